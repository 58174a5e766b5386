#!/usr/bin/env python3
"""Generates the Minhang reference tables in this directory (deterministic).

Run from anywhere: `python3 schemas/reference/generate.py`. The output files are
committed and are what `pingan-domain` embeds; this script only exists so the
synthetic rows can be regenerated reproducibly (fixed seed, no network, stdlib only).
Real rows (towns, stations, the named compounds and POIs) are written literally below
and their provenance is documented in README.md.
"""
import json
import math
import os
import random

SEED = 20191231
OUT = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(SEED)

# ---------------------------------------------------------------------------
# Geometry: a planar partition built from shared vertices, so neighbouring towns
# share edges exactly and the 14 towns tile the district without gaps or overlaps.
# Coordinates are (lon, lat), WGS-84, hand-drawn from the district's overall shape.
# ---------------------------------------------------------------------------
V = {
    # district outline, clockwise from the north-west
    "O25": (121.260, 31.210), "O1": (121.272, 31.243), "O2": (121.320, 31.250),
    "O3": (121.345, 31.225), "O4": (121.360, 31.205), "O5": (121.400, 31.205),
    "O6": (121.425, 31.195), "O7": (121.425, 31.165), "O8": (121.445, 31.150),
    "R0": (121.465, 31.130), "O11": (121.500, 31.140), "O12": (121.530, 31.120),
    "P1": (121.530, 31.095), "O13": (121.560, 31.070), "O14": (121.550, 31.000),
    "O15": (121.500, 30.980), "R4": (121.455, 31.000), "O17": (121.430, 30.990),
    "O18": (121.370, 30.985), "O19": (121.310, 30.990), "O20": (121.280, 31.030),
    "O21": (121.268, 31.080), "O22": (121.262, 31.120), "O23": (121.290, 31.150),
    "O24": (121.282, 31.190),
    # internal vertices
    "H1": (121.330, 31.214), "H2": (121.300, 31.202), "X1": (121.355, 31.180),
    "X2": (121.310, 31.180), "Q1": (121.370, 31.170), "Q2": (121.375, 31.140),
    "Q3": (121.340, 31.135), "Q4": (121.300, 31.140), "G1": (121.405, 31.163),
    "G2": (121.382, 31.166), "G3": (121.410, 31.142), "M2": (121.420, 31.105),
    "M3": (121.390, 31.110), "S1": (121.400, 31.085), "S2": (121.360, 31.078),
    "S3": (121.330, 31.090), "W1": (121.318, 31.058), "K1": (121.440, 31.090),
    "K2": (121.430, 31.040), "K3": (121.445, 31.010), "J1": (121.382, 31.030),
    # the Huangpu river, west bank = 吴泾, east bank = 浦锦/浦江
    "R1": (121.470, 31.110), "Rp": (121.473, 31.090), "R2": (121.470, 31.070),
    "R3": (121.465, 31.030),
}
RINGS = {
    "310112106": ["O25", "O1", "O2", "O3", "H1", "H2", "O24"],  # 华漕
    "310112008": ["H2", "H1", "O3", "O4", "X1", "X2"],  # 新虹
    "310112102": ["O24", "H2", "X2", "X1", "Q1", "Q2", "Q3", "Q4", "O23"],  # 七宝
    "310112107": ["O4", "O5", "O6", "O7", "G1", "G2", "Q1", "X1"],  # 虹桥
    "310112006": ["Q1", "G2", "G1", "G3", "Q2"],  # 古美
    "310112108": ["Q2", "G3", "G1", "O7", "O8", "R0", "R1", "M2", "M3"],  # 梅陇
    "310112101": ["Q3", "Q2", "M3", "S1", "S2", "S3"],  # 莘庄
    "310112501": ["O23", "Q4", "Q3", "S3", "W1", "O21", "O22"],  # 莘庄工业区
    "310112112": ["W1", "S3", "S2", "J1", "O18", "O19", "O20", "O21"],  # 马桥
    "310112103": ["S2", "S1", "M3", "M2", "K1", "K2", "J1"],  # 颛桥
    "310112110": ["M2", "R1", "Rp", "R2", "R3", "R4", "K3", "K2", "K1"],  # 吴泾
    "310112001": ["J1", "K2", "K3", "R4", "O17", "O18"],  # 江川路
    "310112009": ["R0", "O11", "O12", "P1", "Rp", "R1"],  # 浦锦
    "310112114": ["Rp", "P1", "O13", "O14", "O15", "R4", "R3", "R2"],  # 浦江
}
POLY = {code: [V[n] for n in names] for code, names in RINGS.items()}

KX = 111320.0 * math.cos(math.radians(31.1))
KY = 110574.0


def pip(pt, ring):
    x, y = pt
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def seg_dist_m(p, a, b):
    px, py = p[0] * KX, p[1] * KY
    ax, ay = a[0] * KX, a[1] * KY
    bx, by = b[0] * KX, b[1] * KY
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def boundary_dist_m(p, ring):
    return min(seg_dist_m(p, ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring)))


def dist_m(a, b):
    return math.hypot((a[0] - b[0]) * KX, (a[1] - b[1]) * KY)


def town_of(p):
    hits = [c for c, r in POLY.items() if pip(p, r)]
    return hits[0] if len(hits) == 1 else None


def area_km2(ring):
    s = 0.0
    for i in range(len(ring)):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % len(ring)]
        s += (x1 * KX) * (y2 * KY) - (x2 * KX) * (y1 * KY)
    return s / 2 / 1e6


def check_tiling():
    # every directed edge must be matched by its reverse in another ring, or be outline
    edges = {}
    for code, names in RINGS.items():
        for i in range(len(names)):
            e = (names[i], names[(i + 1) % len(names)])
            assert e not in edges, ("duplicate directed edge", e, code)
            edges[e] = code
    # the unmatched edges must form one cycle: the district outline
    outer = dict(e for e in edges if (e[1], e[0]) not in edges)
    start = next(iter(outer))
    cycle = [start]
    while outer[cycle[-1]] != start:
        cycle.append(outer[cycle[-1]])
    assert len(cycle) == len(outer), ("outline is not a single ring", len(cycle), len(outer))
    # raster check: no point is in two towns
    for i in range(300):
        for j in range(270):
            p = (121.2605 + i * 0.001, 30.9805 + j * 0.001)
            hits = [c for c, r in POLY.items() if pip(p, r)]
            assert len(hits) <= 1, (p, hits)


def ccw(ring):
    return ring if area_km2(ring) > 0 else list(reversed(ring))


def random_point_in(code, clearance_m, r=rng, near=None, spread_m=None):
    ring = POLY[code]
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    for _ in range(20000):
        if near is None:
            p = (r.uniform(min(xs), max(xs)), r.uniform(min(ys), max(ys)))
        else:
            ang = r.uniform(0, 2 * math.pi)
            d = spread_m * math.sqrt(r.random())
            p = (near[0] + d * math.cos(ang) / KX, near[1] + d * math.sin(ang) / KY)
        if pip(p, ring) and boundary_dist_m(p, ring) >= clearance_m:
            return p
    raise RuntimeError(f"cannot place a point in {code}")


# ---------------------------------------------------------------------------
# Towns (DOMAIN §7.1, all [V])
# ---------------------------------------------------------------------------
TOWNS = [
    ("310112001", "江川路街道", "Jiangchuan Road Subdistrict", "subdistrict", "-"),
    ("310112006", "古美路街道", "Gumei Road Subdistrict", "subdistrict", "古美街道"),
    ("310112008", "新虹街道", "Xinhong Subdistrict", "subdistrict", "-"),
    ("310112009", "浦锦街道", "Pujin Subdistrict", "subdistrict", "-"),
    ("310112101", "莘庄镇", "Xinzhuang Town", "town", "-"),
    ("310112102", "七宝镇", "Qibao Town", "town", "-"),
    ("310112103", "颛桥镇", "Zhuanqiao Town", "town", "-"),
    ("310112106", "华漕镇", "Huacao Town", "town", "-"),
    ("310112107", "虹桥镇", "Hongqiao Town", "town", "-"),
    ("310112108", "梅陇镇", "Meilong Town", "town", "-"),
    ("310112110", "吴泾镇", "Wujing Town", "town", "-"),
    ("310112112", "马桥镇", "Maqiao Town", "town", "-"),
    ("310112114", "浦江镇", "Pujiang Town", "town", "-"),
    ("310112501", "莘庄工业区", "Xinzhuang Industrial Zone", "functional_zone", "-"),
]
TOWN_ZH = {t[0]: t[1] for t in TOWNS}

# ---------------------------------------------------------------------------
# Stations (DOMAIN §7.2). Codes are synthetic mnemonics; coordinates approximate.
# ---------------------------------------------------------------------------
STATIONS = [
    ("MH-PS-QIBAO", "七宝派出所", "Qibao Police Station", "verified", ["310112102"], "-", (121.3530, 31.1580), "seed (所长 金晓东)"),
    ("MH-PS-HONGQIAO", "虹桥派出所", "Hongqiao Police Station", "verified", ["310112107"], "吴中路600号", (121.4000, 31.1820), "seed (所长 魏栋); address from a public code file"),
    ("MH-PS-LONGBAI", "龙柏派出所", "Longbai Police Station", "weak", ["310112107"], "-", (121.3780, 31.1760), "seen as 虹桥龙柏派出所 on the safe-house command vehicle"),
    ("MH-PS-GUMEI", "古美路派出所", "Gumei Road Police Station", "weak", ["310112006"], "-", (121.3950, 31.1500), "021fenlei"),
    ("MH-PS-MEILONG", "梅陇派出所", "Meilong Police Station", "verified", ["310112108"], "-", (121.4200, 31.1250), "thepaper.cn 4393291"),
    ("MH-PS-MAQIAO", "马桥派出所", "Maqiao Police Station", "verified", ["310112112"], "-", (121.3500, 31.0300), "whb.cn 2022"),
    ("MH-PS-XINZHUANG", "莘庄派出所", "Xinzhuang Police Station", "verified", ["310112101"], "-", (121.3700, 31.1180), "nbd.com.cn (上海康城)"),
    ("MH-PS-XINSONG", "莘松派出所", "Xinsong Police Station", "weak", ["310112101"], "-", (121.3550, 31.0950), "shtoutiao.cn; covered 上海康城 in 2017"),
    ("MH-PS-WUJING", "吴泾派出所", "Wujing Police Station", "weak", ["310112110"], "永德路800号", (121.4500, 31.0600), "public code file"),
    ("MH-PS-BIJIANGLU", "碧江路派出所", "Bijiang Road Police Station", "weak", ["310112001"], "兰坪路352弄", (121.4000, 31.0200), "name from a public code file; town mapping inferred [U]"),
    ("MH-PS-JIANGCHUAN", "江川路派出所", "Jiangchuan Road Police Station", "unverified", ["310112001"], "-", (121.4180, 31.0060), "plausible name, not confirmed"),
    ("MH-PS-ZHUANQIAO", "颛桥派出所", "Zhuanqiao Police Station", "unverified", ["310112103"], "-", (121.4100, 31.0700), "plausible name, not confirmed"),
    ("MH-PS-HUACAO", "华漕派出所", "Huacao Police Station", "unverified", ["310112106"], "-", (121.3000, 31.2250), "plausible name, not confirmed"),
    ("MH-PS-PUJIANG", "浦江派出所", "Pujiang Police Station", "unverified", ["310112114"], "-", (121.5100, 31.0500), "plausible name, not confirmed"),
    ("MH-PS-XINHONG", "新虹派出所", "Xinhong Police Station", "unverified", ["310112008"], "-", (121.3300, 31.1900), "plausible name, not confirmed"),
    ("MH-PS-PUJIN", "浦锦派出所", "Pujin Police Station", "unverified", ["310112009"], "-", (121.4950, 31.1150), "plausible name, not confirmed"),
    ("MH-PS-XZINDUSTRY", "莘庄工业区派出所", "Xinzhuang Industrial Zone Police Station", "unverified", ["310112501"], "-", (121.3000, 31.1050), "plausible name, not confirmed"),
]
ST = {s[0]: s for s in STATIONS}
TOWN_STATIONS = {t[0]: [s[0] for s in STATIONS if t[0] in s[4]] for t in TOWNS}

# ---------------------------------------------------------------------------
# Name pools (synthetic). Roads are real or plausible road names of each town.
# ---------------------------------------------------------------------------
ROADS = {
    "310112102": [("七莘路", "Qixin Road"), ("漕宝路", "Caobao Road"), ("新镇路", "Xinzhen Road"), ("青年路", "Qingnian Road"), ("沪松公路", "Husong Highway"), ("吴宝路", "Wubao Road"), ("星中路", "Xingzhong Road"), ("新龙路", "Xinlong Road"), ("农南路", "Nongnan Road"), ("航华路", "Hanghua Road")],
    "310112107": [("吴中路", "Wuzhong Road"), ("虹梅路", "Hongmei Road"), ("虹莘路", "Hongxin Road"), ("红松路", "Hongsong Road"), ("虹井路", "Hongjing Road"), ("姚虹路", "Yaohong Road"), ("合川路", "Hechuan Road"), ("金汇路", "Jinhui Road"), ("龙茗路", "Longming Road"), ("紫藤路", "Ziteng Road")],
    "310112008": [("申长路", "Shenchang Road"), ("申贵路", "Shengui Road"), ("华翔路", "Huaxiang Road"), ("爱博路", "Aibo Road"), ("申滨路", "Shenbin Road"), ("天山西路", "West Tianshan Road"), ("北翟路", "Beizhai Road")],
    "310112106": [("北青公路", "Beiqing Highway"), ("纪翟路", "Jizhai Road"), ("华江路", "Huajiang Road"), ("诸光路", "Zhuguang Road"), ("联友路", "Lianyou Road"), ("华漕路", "Huacao Road"), ("北翟路", "Beizhai Road")],
    "310112006": [("古美路", "Gumei Road"), ("平吉路", "Pingji Road"), ("平南路", "Pingnan Road"), ("万源路", "Wanyuan Road"), ("顾戴路", "Gudai Road"), ("航新路", "Hangxin Road"), ("古龙路", "Gulong Road"), ("宜山路", "Yishan Road")],
    "310112108": [("莲花南路", "South Lianhua Road"), ("老沪闵路", "Old Humin Road"), ("春申路", "Chunshen Road"), ("罗锦路", "Luojin Road"), ("华梅路", "Huamei Road"), ("虹梅南路", "South Hongmei Road"), ("朱梅路", "Zhumei Road"), ("景联路", "Jinglian Road"), ("上中西路", "West Shangzhong Road")],
    "310112101": [("莘松路", "Xinsong Road"), ("莘建路", "Xinjian Road"), ("莘东路", "Xindong Road"), ("沁春路", "Qinchun Road"), ("疏影路", "Shuying Road"), ("秀文路", "Xiuwen Road"), ("莘朱路", "Xinzhu Road"), ("水清路", "Shuiqing Road"), ("报春路", "Baochun Road"), ("沪闵路", "Humin Road")],
    "310112501": [("春东路", "Chundong Road"), ("光华路", "Guanghua Road"), ("申富路", "Shenfu Road"), ("中春路", "Zhongchun Road"), ("北松公路", "Beisong Highway"), ("春中路", "Chunzhong Road")],
    "310112112": [("元江路", "Yuanjiang Road"), ("银都路", "Yindu Road"), ("北松公路", "Beisong Highway"), ("吉盛路", "Jisheng Road"), ("联工路", "Liangong Road"), ("马桥路", "Maqiao Road")],
    "310112103": [("都市路", "Dushi Road"), ("颛兴路", "Zhuanxing Road"), ("银都路", "Yindu Road"), ("沪闵路", "Humin Road"), ("鑫都路", "Xindu Road"), ("颛卫路", "Zhuanwei Road")],
    "310112110": [("龙吴路", "Longwu Road"), ("永德路", "Yongde Road"), ("剑川路", "Jianchuan Road"), ("虹梅南路", "South Hongmei Road"), ("紫竹路", "Zizhu Road"), ("金平路", "Jinping Road"), ("东川路", "Dongchuan Road")],
    "310112001": [("江川路", "Jiangchuan Road"), ("华宁路", "Huaning Road"), ("沧源路", "Cangyuan Road"), ("鹤庆路", "Heqing Road"), ("兰坪路", "Lanping Road"), ("碧江路", "Bijiang Road"), ("昆阳路", "Kunyang Road"), ("闵城路", "Mincheng Road")],
    "310112114": [("浦星公路", "Puxing Highway"), ("陈行公路", "Chenhang Highway"), ("沈杜公路", "Shendu Highway"), ("江月路", "Jiangyue Road"), ("联航路", "Lianhang Road"), ("浦秀路", "Puxiu Road"), ("立跃路", "Liyue Road")],
    "310112009": [("浦锦路", "Pujin Road"), ("芦恒路", "Luheng Road"), ("浦驰路", "Puchi Road"), ("浦申路", "Pushen Road"), ("恒南路", "Hengnan Road"), ("浦星公路", "Puxing Highway")],
}
LOCAL = {
    "310112102": [("航华", "Hanghua"), ("七宝", "Qibao"), ("新龙", "Xinlong"), ("吴宝", "Wubao"), ("沪星", "Huxing"), ("九星", "Jiuxing"), ("明强", "Mingqiang")],
    "310112107": [("龙柏", "Longbai"), ("红松", "Hongsong"), ("虹仙", "Hongxian"), ("虹梅", "Hongmei"), ("古北", "Gubei"), ("金汇", "Jinhui"), ("虹华", "Honghua")],
    "310112008": [("爱博", "Aibo"), ("申虹", "Shenhong"), ("华翔", "Huaxiang"), ("纪王", "Jiwang")],
    "310112106": [("华漕", "Huacao"), ("许浦", "Xupu"), ("诸翟", "Zhuzhai"), ("纪王", "Jiwang"), ("朱家泾", "Zhujiajing")],
    "310112006": [("平阳", "Pingyang"), ("平南", "Pingnan"), ("古美", "Gumei"), ("万源", "Wanyuan"), ("东兰", "Donglan"), ("星站", "Xingzhan"), ("古龙", "Gulong")],
    "310112108": [("梅陇", "Meilong"), ("罗阳", "Luoyang"), ("春申", "Chunshen"), ("华梅", "Huamei"), ("曹行", "Caohang"), ("陇南", "Longnan"), ("朱梅", "Zhumei")],
    "310112101": [("莘城", "Xincheng"), ("莘松", "Xinsong"), ("绿梅", "Lvmei"), ("西湖", "Xihu"), ("莘东", "Xindong"), ("水清", "Shuiqing"), ("报春", "Baochun")],
    "310112501": [("春申", "Chunshen"), ("光华", "Guanghua"), ("中春", "Zhongchun")],
    "310112112": [("马桥", "Maqiao"), ("彭渡", "Pengdu"), ("俞塘", "Yutang"), ("吴会", "Wuhui"), ("同心", "Tongxin")],
    "310112103": [("颛桥", "Zhuanqiao"), ("银都", "Yindu"), ("北桥", "Beiqiao"), ("中沟", "Zhonggou"), ("安乐", "Anle")],
    "310112110": [("吴泾", "Wujing"), ("塘湾", "Tangwan"), ("紫竹", "Zizhu"), ("永德", "Yongde"), ("和平", "Heping")],
    "310112001": [("碧江", "Bijiang"), ("鹤庆", "Heqing"), ("红旗", "Hongqi"), ("东风", "Dongfeng"), ("兰坪", "Lanping"), ("华坪", "Huaping"), ("沧源", "Cangyuan")],
    "310112114": [("浦江", "Pujiang"), ("杜行", "Duhang"), ("陈行", "Chenhang"), ("召稼楼", "Zhaojialou"), ("革新", "Gexin")],
    "310112009": [("浦锦", "Pujin"), ("芦胜", "Lusheng"), ("丰南", "Fengnan"), ("恒西", "Hengxi")],
}
GENERIC = [("春晖", "Chunhui"), ("锦绣", "Jinxiu"), ("金都", "Jindu"), ("银杏", "Yinxing"), ("丽华", "Lihua"),
           ("莲花", "Lianhua"), ("康乐", "Kangle"), ("和平", "Heping"), ("繁荣", "Fanrong"), ("华盛", "Huasheng"),
           ("景城", "Jingcheng"), ("香樟", "Xiangzhang"), ("绿洲", "Lvzhou"), ("明华", "Minghua"), ("东苑", "Dongyuan"),
           ("南方", "Nanfang"), ("北星", "Beixing"), ("新梅", "Xinmei"), ("永康", "Yongkang"), ("安康", "Ankang"),
           ("富华", "Fuhua"), ("金丰", "Jinfeng"), ("嘉华", "Jiahua"), ("长青", "Changqing"), ("碧波", "Bibo"),
           ("水岸", "Shui'an"), ("阳光", "Yangguang"), ("紫薇", "Ziwei"), ("海棠", "Haitang"), ("玉兰", "Yulan"),
           ("丁香", "Dingxiang"), ("枫林", "Fenglin"), ("同德", "Tongde"), ("新华", "Xinhua"), ("文华", "Wenhua"),
           ("育才", "Yucai"), ("名都", "Mingdu"), ("景江", "Jingjiang"), ("天和", "Tianhe"), ("瑞和", "Ruihe"),
           ("怡景", "Yijing"), ("君悦", "Junyue"), ("秀枫", "Xiufeng"), ("翠竹", "Cuizhu"), ("梧桐", "Wutong"),
           ("清水", "Qingshui"), ("吉祥", "Jixiang"), ("友谊", "Youyi"), ("东方", "Dongfang"), ("晶华", "Jinghua"),
           ("宝华", "Baohua"), ("兴华", "Xinghua"), ("嘉和", "Jiahe"), ("恒盛", "Hengsheng"), ("金桂", "Jingui"),
           ("荷花", "Hehua"), ("樱花", "Yinghua"), ("望春", "Wangchun"), ("绿苑", "Lvyuan"), ("新苑", "Xinyuan"),
           ("银河", "Yinhe"), ("星辰", "Xingchen"), ("凤凰", "Fenghuang"), ("百合", "Baihe"), ("南华", "Nanhua"),
           ("福华", "Fuhua"), ("新桥", "Xinqiao"), ("长兴", "Changxing"), ("德馨", "Dexin"), ("汇贤", "Huixian")]
NUM_ZH = ["一", "二", "三", "四", "五"]
NUM_PY = ["Yicun", "Ercun", "Sancun", "Sicun", "Wucun"]
# suffix, pinyin/English, (buildings range, households-per-building range)
SUFFIXES = [
    ("新村", "Xincun", (20, 80), (36, 60)),
    ("苑", "Yuan", (8, 30), (60, 140)),
    ("花园", "Garden", (12, 60), (12, 40)),
    ("公寓", "Apartments", (3, 16), (80, 180)),
    ("小区", "Estate", (15, 60), (40, 90)),
    ("家园", "Homes", (10, 40), (60, 120)),
]

# ---------------------------------------------------------------------------
# Committees (synthetic)
# ---------------------------------------------------------------------------
COMMITTEES_PER_TOWN = {"310112001": 8, "310112006": 8, "310112008": 5, "310112009": 6, "310112101": 10,
                       "310112102": 9, "310112103": 7, "310112106": 6, "310112107": 10, "310112108": 9,
                       "310112110": 6, "310112112": 6, "310112114": 8, "310112501": 4}
VILLAGE_SHARE = {"310112106": 0.4, "310112112": 0.4, "310112114": 0.35, "310112103": 0.25, "310112110": 0.25, "310112501": 0.25}
SUFFIX_CODE = {t[0]: t[0][-3:] for t in TOWNS}

used_prefix_global = set()


def pick_prefixes(town, n):
    pool = LOCAL[town] + [g for g in GENERIC]
    out = []
    for p in pool:
        if p[0] in used_prefix_global:
            continue
        out.append(p)
        used_prefix_global.add(p[0])
        if len(out) == n:
            return out
    raise RuntimeError("prefix pool exhausted")


def nearest_station(town, p):
    return min(TOWN_STATIONS[town], key=lambda s: dist_m(p, ST[s][6]))


committees = []  # dict rows
for town, *_ in TOWNS:
    n = COMMITTEES_PER_TOWN[town]
    prefixes = pick_prefixes(town, n)
    pts = []
    for k in range(n):
        for _ in range(1000):
            p = random_point_in(town, 300)
            if all(dist_m(p, q) > 1200 for q in pts):
                break
        pts.append(p)
    for k, (p, (zh, py)) in enumerate(zip(pts, prefixes)):
        village = rng.random() < VILLAGE_SHARE.get(town, 0.0)
        committees.append({
            "id": f"MH-CM-{SUFFIX_CODE[town]}-{k + 1:02d}",
            "name_zh": zh + ("村村委会" if village else "居委会"),
            "name_en": py + (" Village Committee" if village else " Residents' Committee"),
            "kind": "village" if village else "residents",
            "town": town, "station": nearest_station(town, p), "pt": p,
        })
# every station needs at least one committee of its own
for s in STATIONS:
    mine = [c for c in committees if c["station"] == s[0]]
    if not mine:
        town = s[4][0]
        c = min((c for c in committees if c["town"] == town), key=lambda c: dist_m(c["pt"], s[6]))
        c["station"] = s[0]
# 上海康城 has 4 residents' committees [V~]; model them as synthetic committees in 莘庄镇
KANGCHENG = (121.3600, 31.1000)
for k, (zh, py) in enumerate([("康城第一", "Kangcheng No.1"), ("康城第二", "Kangcheng No.2"), ("康城第三", "Kangcheng No.3"), ("康城第四", "Kangcheng No.4")]):
    p = (KANGCHENG[0] + (k % 2 - 0.5) * 0.004, KANGCHENG[1] + (k // 2 - 0.5) * 0.004)
    committees.append({"id": f"MH-CM-101-{11 + k:02d}", "name_zh": zh + "居委会", "name_en": py + " Residents' Committee",
                       "kind": "residents", "town": "310112101", "station": "MH-PS-XINSONG", "pt": p})

# ---------------------------------------------------------------------------
# Compounds: the real ones (DOMAIN §7.3), then synthetic ones
# ---------------------------------------------------------------------------
REAL = [
    # name_zh, name_en, town, road_zh, road_en, lane, buildings, households, population, cameras, (lon, lat), radius, town_verified, note
    ("上海康城", "Shanghai Kangcheng", "310112101", "莘松路", "Xinsong Road", 958, 298, 12000, 50000, 107, KANGCHENG, 550, True,
     "real [V]: seed figures (298 buildings, 1.2万 homes, ~5万 residents, 107 cameras before the upgrade); address 莘松路958弄 [V]; coordinates approximate"),
    ("爱博二村", "Aibo Ercun", "310112008", "爱博路", "Aibo Road", 88, 40, 1800, 4600, 30, (121.3400, 31.1920), 220, True,
     "real name, town 新虹街道 [V~]; address, figures and coordinates synthetic"),
    ("红春一公寓", "Hongchun No.1 Apartments", "310112107", "虹梅路", "Hongmei Road", 3330, 12, 900, 2300, 24, (121.3962, 31.1752), 120, True,
     "real name and address 虹梅路3330弄 [V~]; figures synthetic; coordinates approximate"),
    ("虹延小区", "Hongyan Estate", "310112107", "虹梅路", "Hongmei Road", 3818, 30, 1600, 4100, 36, (121.3940, 31.1700), 160, True,
     "real name and address 虹梅路3818弄 [V~]; figures synthetic; coordinates approximate"),
    ("金色西郊城", "Jinse Xijiao Cheng", "310112106", "纪翟路", "Jizhai Road", 1199, 120, 2600, 6800, 60, (121.2950, 31.2150), 300, False,
     "real name [V]; town NOT confirmed [U] (placed in 华漕镇); address, figures and coordinates synthetic"),
    ("好世鹿鸣苑", "Haoshi Luming Yuan", "310112001", "闵城路", "Mincheng Road", 199, 24, 1100, 2800, 28, (121.4100, 31.0150), 150, False,
     "real name and address 闵城路199弄 [U]; town NOT confirmed [U] (placed in 江川路街道); figures and coordinates synthetic"),
]
COMPOUNDS_PER_TOWN = {"310112001": 42, "310112006": 38, "310112008": 20, "310112009": 30, "310112101": 58,
                      "310112102": 56, "310112103": 44, "310112106": 28, "310112107": 50, "310112108": 62,
                      "310112110": 30, "310112112": 26, "310112114": 44, "310112501": 14}

compounds = []
used_lanes = set()
used_names = set()


def nearest_committee(town, p):
    return min((c for c in committees if c["town"] == town and not c["id"].startswith("MH-CM-101-1")),
               key=lambda c: dist_m(c["pt"], p))


def fits(p, radius):
    return all(dist_m(p, c["pt"]) > radius + c["radius"] + 40 for c in compounds)


for (zh, en, town, rz, re_, lane, b, hh, pop, cam, pt, rad, tv, note) in REAL:
    ring = POLY[town]
    assert pip(pt, ring) and boundary_dist_m(pt, ring) > rad + 60, (zh, boundary_dist_m(pt, ring))
    assert fits(pt, rad), zh
    if zh == "上海康城":
        com = next(c for c in committees if c["id"] == "MH-CM-101-11")
    else:
        com = nearest_committee(town, pt)
    used_lanes.add((rz, lane))
    used_names.add(zh)
    compounds.append({"name_zh": zh, "name_en": en, "town": town, "station": com["station"], "committee": com["id"],
                      "road_zh": rz, "road_en": re_, "lane": lane, "buildings": b, "households": hh,
                      "population": pop, "cameras": cam, "pt": pt, "radius": rad, "synthetic": False,
                      "town_verified": tv, "note": note})

for town, *_ in TOWNS:
    n = COMPOUNDS_PER_TOWN[town]
    locals_ = LOCAL[town]
    made = 0
    attempts = 0
    while made < n:
        attempts += 1
        assert attempts < 100000, town
        # realistic mix: old 新村 series on local names, estates on generic names
        if rng.random() < 0.35:
            pz, pp = rng.choice(locals_)
            k = rng.randrange(5)
            name_zh, name_en, sfx = f"{pz}{NUM_ZH[k]}村", f"{pp} {NUM_PY[k]}", SUFFIXES[0]
        else:
            pz, pp = rng.choice(locals_ + GENERIC)
            sfx = rng.choice(SUFFIXES)
            name_zh, name_en = pz + sfx[0], f"{pp} {sfx[1]}"
        if name_zh in used_names:
            continue
        buildings = rng.randint(*sfx[2])
        hh = buildings * rng.randint(*sfx[3])
        radius = int(max(80, min(380, math.sqrt(hh) * 5.5)) // 10 * 10)
        pt = random_point_in(town, radius + 80)
        if not fits(pt, radius):
            continue
        rz, ren = rng.choice(ROADS[town])
        lane = rng.choice([rng.randint(1, 199), rng.randint(200, 999), rng.randint(1000, 3999)])
        if (rz, lane) in used_lanes:
            continue
        used_lanes.add((rz, lane))
        used_names.add(name_zh)
        com = nearest_committee(town, pt)
        pop = int(hh * rng.uniform(2.3, 3.1))
        cams = int(buildings * rng.uniform(0.8, 2.0) + hh / rng.uniform(40, 90))
        compounds.append({"name_zh": name_zh, "name_en": name_en, "town": town, "station": com["station"],
                          "committee": com["id"], "road_zh": rz, "road_en": ren, "lane": lane,
                          "buildings": buildings, "households": hh, "population": pop, "cameras": cams,
                          "pt": pt, "radius": radius, "synthetic": True, "town_verified": True, "note": "-"})
        made += 1

# ids: per town ordinal, real compounds first (the ordinal is part of the doorplate id)
ordinal = {}
for c in compounds:
    o = ordinal.get(c["town"], 0) + 1
    ordinal[c["town"]] = o
    c["id"] = f"MH-CP-{SUFFIX_CODE[c['town']]}-{o:03d}"

# ---------------------------------------------------------------------------
# POIs
# ---------------------------------------------------------------------------
def rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


POIS = [
    ("POI-QIBAO-OLDSTREET", "七宝老街", "Qibao Old Street", "scenic_area", "310112102", (121.3490, 31.1560), 350, None, "V", "seed: >10 million visitors a year"),
    ("POI-WUZHONG-NIGHTLIFE", "吴中路餐饮酒吧带", "Wuzhong Road nightlife strip", "nightlife", "310112107", (121.3885, 31.1812), 0,
     rect(121.3720, 31.1795, 121.4050, 31.1830), "V~", "200+ restaurants and bars; strip drawn as a rectangle along 吴中路"),
    ("POI-LAOWAIJIE", "老外街", "Laowai Street (Hongmei Rd Lane 3338)", "nightlife", "310112107", (121.3935, 31.1772), 150, None, "V~", "虹梅路3338弄; noise hot spot"),
    ("POI-MIXC", "万象城（吴中路虹莘路口）", "MixC mall (Wuzhong Rd / Hongxin Rd)", "commercial", "310112107", (121.3725, 31.1815), 250, None, "V~", "safe-house command vehicle 虹桥号 parks here"),
    ("POI-HONGQIAO-AIRPORT", "虹桥机场", "Hongqiao Airport", "airport", "310112008", (121.3380, 31.2020), 1000, None, "V", "most of the airfield lies in 长宁区; only the Minhang side is modelled"),
    ("POI-HONGQIAO-HUB", "虹桥综合交通枢纽", "Hongqiao transport hub", "transport_hub", "310112008", (121.3210, 31.1945), 450, None, "V~", "coordinates approximate"),
    ("POI-SHILIN-NIGHTMARKET", "士林夜市", "Shilin night market", "market", "310112108", (121.4120, 31.1200), 200, None, "V", "named by 梅陇派出所; coordinates approximate"),
    ("POI-CHILDRENS-HOSPITAL", "上海儿科医院", "Shanghai children's hospital", "hospital", "310112108", (121.4280, 31.1350), 200, None, "V", "named by 梅陇派出所; coordinates approximate"),
    ("POI-THEATRE-ACADEMY", "上海戏剧学院（校区）", "Shanghai Theatre Academy campus", "school", "310112108", (121.4050, 31.1150), 250, None, "V", "named by 梅陇派出所; coordinates approximate"),
    ("POI-XINGNAN-VILLAGE", "行南村", "Xingnan Village", "urban_village", "310112108", (121.4450, 31.1250), 400, None, "V", "named by 梅陇派出所; coordinates approximate"),
    ("POI-WUJING-COLLEGE", "吴泾某职业院校", "Vocational college in Wujing (name not public)", "school", "310112110", (121.4550, 31.0500), 300, None, "V~", "fraud hot spot; name not given by the source"),
    ("POI-XINZHUANG-HUB", "莘庄地铁站", "Xinzhuang metro station", "transport_hub", "310112101", (121.3820, 31.1110), 250, None, "U", "coordinates approximate"),
]
for (pid, zh, en, kind, town, pt, rad, poly, ver, note) in POIS:
    assert town_of(pt) == town, (pid, town_of(pt))
    if poly:
        assert all(town_of(q) == town for q in poly), pid

# ---------------------------------------------------------------------------
# Safe houses (synthetic; counts per station from the seed: 虹桥所 31, Minhang 300+)
# ---------------------------------------------------------------------------
SAFE_QUOTA = {"MH-PS-HONGQIAO": 31, "MH-PS-LONGBAI": 18, "MH-PS-QIBAO": 35, "MH-PS-GUMEI": 20,
              "MH-PS-MEILONG": 30, "MH-PS-XINZHUANG": 26, "MH-PS-XINSONG": 14, "MH-PS-XINHONG": 16,
              "MH-PS-HUACAO": 12, "MH-PS-ZHUANQIAO": 16, "MH-PS-WUJING": 14, "MH-PS-MAQIAO": 10,
              "MH-PS-JIANGCHUAN": 12, "MH-PS-BIJIANGLU": 8, "MH-PS-PUJIANG": 16, "MH-PS-PUJIN": 12,
              "MH-PS-XZINDUSTRY": 10}
assert sum(SAFE_QUOTA.values()) == 300
HOT = {"MH-PS-HONGQIAO": ["POI-WUZHONG-NIGHTLIFE", "POI-LAOWAIJIE", "POI-MIXC"],
       "MH-PS-LONGBAI": ["POI-MIXC", "POI-WUZHONG-NIGHTLIFE"],
       "MH-PS-QIBAO": ["POI-QIBAO-OLDSTREET"], "MH-PS-MEILONG": ["POI-SHILIN-NIGHTMARKET", "POI-XINGNAN-VILLAGE"],
       "MH-PS-XINZHUANG": ["POI-XINZHUANG-HUB"], "MH-PS-XINHONG": ["POI-HONGQIAO-HUB"],
       "MH-PS-WUJING": ["POI-WUJING-COLLEGE"]}
POI_BY = {p[0]: p for p in POIS}
HOST_ZH = {"convenience_store": "便利店", "company_guard_room": "企业门卫室", "compound_gate_lodge": "小区门岗",
           "mobile_command_vehicle": "移动指挥车"}
HOST_EN = {"convenience_store": "convenience store", "company_guard_room": "company guard room",
           "compound_gate_lodge": "compound gate lodge", "mobile_command_vehicle": "mobile command vehicle"}
safe_houses = []
for s in STATIONS:
    code = s[0]
    town = s[4][0]
    mine = [c for c in compounds if c["station"] == code]
    hot = HOT.get(code, [])
    for k in range(SAFE_QUOTA[code]):
        if code == "MH-PS-LONGBAI" and k == 0:
            # the one mobile command vehicle, "虹桥号", parked at 万象城 [V~]
            pt = (121.3728, 31.1811)
            safe_houses.append({"name_zh": "虹桥号移动安全屋", "name_en": "Mobile safe house \"Hongqiao\"",
                                "host": "mobile_command_vehicle", "station": code, "town": town, "pt": pt,
                                "address_zh": "吴中路虹莘路口（万象城）", "staff": 6})
            continue
        r = rng.random()
        if hot and r < (0.75 if code == "MH-PS-HONGQIAO" else 0.45):
            poi = POI_BY[rng.choice(hot)]
            centre = poi[5]
            host = rng.choice(["convenience_store", "convenience_store", "company_guard_room"])
            pt = random_point_in(town, 40, near=centre, spread_m=700)
            rz, ren = rng.choice(ROADS[town][:4])
        elif mine and r < 0.8:
            c = rng.choice(mine)
            host = "compound_gate_lodge"
            ang = rng.uniform(0, 2 * math.pi)
            pt = (c["pt"][0] + 0.8 * c["radius"] * math.cos(ang) / KX, c["pt"][1] + 0.8 * c["radius"] * math.sin(ang) / KY)
            rz, ren = c["road_zh"], c["road_en"]
        else:
            host = rng.choice(["convenience_store", "company_guard_room"])
            pt = random_point_in(town, 40)
            rz, ren = rng.choice(ROADS[town])
        no = rng.randint(1, 1500)
        if host == "compound_gate_lodge":
            addr = f"{c['road_zh']}{c['lane']}弄"
            zh = f"{c['name_zh']}门岗安全屋"
            en = f"Safe house - gate lodge of {c['name_en']}"
        else:
            addr = f"{rz}{no}号"
            zh = f"{rz}{no}号{HOST_ZH[host]}安全屋"
            en = f"Safe house - {HOST_EN[host]}, {no} {ren}"
        safe_houses.append({"name_zh": zh, "name_en": en, "host": host, "station": code, "town": town, "pt": pt,
                            "address_zh": addr, "staff": rng.randint(2, 8)})
for i, h in enumerate(safe_houses):
    h["id"] = f"MH-SH-{i + 1:04d}"
    assert town_of(h["pt"]) == h["town"], h

# ---------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------
def f6(x):
    return f"{x:.6f}"


def yn(b):
    return "Y" if b else "N"


def write(name, header_comment, cols, rows):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as fh:
        for line in header_comment:
            fh.write(f"# {line}\n")
        fh.write("\t".join(cols) + "\n")
        for r in rows:
            assert all("\t" not in str(x) and "\n" not in str(x) for x in r)
            fh.write("\t".join(str(x) for x in r) + "\n")


GEN = "generated by schemas/reference/generate.py (seed %d); see README.md for provenance" % SEED
write("towns.tsv", ["Minhang district (310112 闵行区): 4 街道, 9 镇 and 1 functional zone; codes are the real statistical codes [V].", GEN],
      ["code", "name_zh", "name_en", "kind", "alias_zh", "verification"],
      [(c, zh, en, k, a, "verified") for (c, zh, en, k, a) in TOWNS])
write("stations.tsv", ["Police stations of 上海市公安局闵行分局. Codes are synthetic mnemonics; verification per DOMAIN §7.2",
                       "(verified = [V], weak = [V~], unverified = [U]: do not present unverified names as real).",
                       "towns: comma-separated town codes served (many-to-many); lat/lon approximate.", GEN],
      ["code", "name_zh", "name_en", "verification", "towns", "address_zh", "lat", "lon", "note"],
      [(s[0], s[1], s[2], s[3], ",".join(s[4]), s[5], f6(s[6][1]), f6(s[6][0]), s[7]) for s in STATIONS])
write("committees.tsv", ["Residents'/village committees (居委/村委). ALL SYNTHETIC: names and positions are invented.", GEN],
      ["id", "name_zh", "name_en", "kind", "town", "station", "lat", "lon", "synthetic"],
      [(c["id"], c["name_zh"], c["name_en"], c["kind"], c["town"], c["station"], f6(c["pt"][1]), f6(c["pt"][0]), "Y")
       for c in sorted(committees, key=lambda c: c["id"])])
write("compounds.tsv", ["Residential compounds (小区). synthetic=N rows are real names from DOMAIN §7.3 (see note);",
                        "synthetic=Y rows are invented (plausible names on real or plausible road names).",
                        "Address = road_zh + lane + 弄. radius_m is the compound's extent used for point lookup.", GEN],
      ["id", "name_zh", "name_en", "town", "station", "committee", "road_zh", "road_en", "lane", "buildings",
       "households", "population", "cameras", "lat", "lon", "radius_m", "synthetic", "town_verified", "note"],
      [(c["id"], c["name_zh"], c["name_en"], c["town"], c["station"], c["committee"], c["road_zh"], c["road_en"],
        c["lane"], c["buildings"], c["households"], c["population"], c["cameras"], f6(c["pt"][1]), f6(c["pt"][0]),
        c["radius"], yn(c["synthetic"]), yn(c["town_verified"]), c["note"]) for c in compounds])
write("pois.tsv", ["Points of interest and hot spots (DOMAIN §7.3). radius_m for circles; polygon = lon,lat;lon,lat;... or '-'.",
                   "verification: V / V~ / U for the name and town; coordinates are approximate.", GEN],
      ["id", "name_zh", "name_en", "kind", "town", "lat", "lon", "radius_m", "polygon", "verification", "note"],
      [(p[0], p[1], p[2], p[3], p[4], f6(p[5][1]), f6(p[5][0]), p[6],
        ";".join(f"{f6(x)},{f6(y)}" for x, y in p[7]) if p[7] else "-", p[8], p[9]) for p in POIS])
write("safe_houses.tsv", ["Safe houses (安全屋). ALL SYNTHETIC except the counts (虹桥所 31, Minhang 300+ [V]) and the",
                          "mobile command vehicle 虹桥号 at 万象城 [V~]. Open 24 h, marked by a warning light and sign.", GEN],
      ["id", "name_zh", "name_en", "host_type", "station", "town", "address_zh", "lat", "lon", "trained_staff",
       "has_medical_kit", "has_warning_light", "synthetic"],
      [(h["id"], h["name_zh"], h["name_en"], h["host"], h["station"], h["town"], h["address_zh"], f6(h["pt"][1]),
        f6(h["pt"][0]), h["staff"], "Y", "Y", "Y") for h in safe_houses])

features = []
for code, zh, en, kind, _ in TOWNS:
    ring = ccw(POLY[code])
    coords = [[round(x, 6), round(y, 6)] for x, y in ring] + [[round(ring[0][0], 6), round(ring[0][1], 6)]]
    features.append({"type": "Feature", "properties": {"code": code, "name_zh": zh, "name_en": en},
                     "geometry": {"type": "Polygon", "coordinates": [coords]}})
geo = {"type": "FeatureCollection", "name": "minhang_towns_approx",
       "note": "APPROXIMATE town shapes for Minhang (310112), hand-drawn as a gap-free partition of the district for "
               "demo maps and point lookup. Not survey data: boundaries can be off by a kilometre or more.",
       "features": features}
with open(os.path.join(OUT, "towns.approx.geojson"), "w", encoding="utf-8", newline="\n") as fh:
    fh.write(json.dumps(geo, ensure_ascii=False, indent=1) + "\n")

check_tiling()
for code, zh, *_ in TOWNS:
    print(code, zh, f"{area_km2(POLY[code]):.1f} km2",
          sum(1 for c in compounds if c["town"] == code), "compounds")
print("total area", f"{sum(abs(area_km2(r)) for r in POLY.values()):.1f} km2")
print(len(committees), "committees,", len(compounds), "compounds,", len(safe_houses), "safe houses")
print("households", sum(c["households"] for c in compounds))
