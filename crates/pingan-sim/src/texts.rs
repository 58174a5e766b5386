//! Chinese descriptions: varied templates per subtype, written the way a call-taker summarises a
//! call (报警人称… / 来电称…) or a citizen types a QR report, with slots for places, items,
//! amounts, relations and times, colloquial fillers and the occasional typo.
//!
//! The templates deliberately avoid reading like the classifier's lexicon (DOMAIN.md §8.2):
//! they describe what happened in everyday words, so the generator's intended label is a real
//! benchmark for the classifier rather than an echo of its keywords.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::place::Spot;

/// Templates per subtype code. `{slot}`s are filled by [`fill`].
pub(crate) const TEMPLATES: &[(&str, &[&str])] = &[
    (
        "CRIM_BURGLARY",
        &[
            "{time}下班回家发现{place}{bldg}{room}的房门被人弄开了，抽屉全被拉出来，少了{homeitem}",
            "家住{place}{bldg}，早上起来发现阳台窗户开着，客厅的包被翻过，里面的{money}现金没了，怀疑夜里有人爬进来",
            "出门旅游{n}天，今天回来发现门锁坏了，卧室柜子都被打开，{homeitem}不见了",
            "邻居告知其家门一直开着，回来一看屋里东西被翻得乱七八糟，丢失{homeitem}",
            "{place}{bldg}一楼住户称家里进过人，防盗窗被掰开一个口子，放在床头的{homeitem}没了",
            "家里保险柜被人撬开，里面的{homeitem}和一些现金都没了，门窗没有明显损坏",
        ],
    ),
    (
        "CRIM_PICKPOCKET",
        &[
            "乘坐{metro}时车厢里很挤，下车后发现背包拉链被拉开，{item}没了",
            "在{place}排队买东西时，放在外衣口袋里的手机被人摸走了",
            "刚才坐{bus}，到站后发现裤兜里的钱包不见了，怀疑车上被人扒了",
            "逛{place}时挎包被人用刀片划了一道口子，里面的{item}丢了",
            "在{place}人多的地方被人挤了一下，回头一看手机已经没了",
        ],
    ),
    (
        "CRIM_THEFT_FROM_VEHICLE",
        &[
            "停在{road}路边的车副驾驶车窗被砸，放在座位上的{item}被拿走",
            "{place}地下车库里自己的车被人撬了，后备箱里的{item}没了",
            "早上下楼发现车门没锁好，车里放的{money}现金和{item}不见了",
            "车停在{place}附近一个小时，回来发现玻璃碎了一地，包被偷",
        ],
    ),
    (
        "CRIM_CYCLE_THEFT",
        &[
            "停在{place}{bldg}楼下的{bike}不见了，车锁被剪断扔在旁边",
            "{bike}停在{shop}门口，买完东西出来就没了，车是上个月新买的",
            "{place}车棚里自己那辆电瓶车的电瓶被人拆走了",
            "自行车停在{metro}站出口，下班回来发现被人骑走了",
            "{place}非机动车库里这几天连着丢了好几辆{bike}，今天轮到报警人的",
        ],
    ),
    (
        "CRIM_THEFT_OTHER",
        &[
            "放在{place}{bldg}门口的快递被人拿走了，里面是{item}",
            "在{shop}上班，收银台抽屉里少了{money}现金，怀疑被人顺走",
            "{road}一处工地上的电缆被人剪走了一大段",
            "晾在楼下的衣服被人收走了，监控拍到一名男子",
            "店里一名顾客趁店员不注意把{item}揣进兜里没付钱就走了",
        ],
    ),
    (
        "CRIM_ROBBERY",
        &[
            "在{road}附近被两名骑摩托车的男子从身后拽走挎包，对方往{dir}方向跑了",
            "走在{place}附近的小路上，一男子从背后冲上来夺了手机就跑",
            "一名男子在{shop}里亮出刀子让店员把收银台的钱拿出来，已经离开",
            "夜里回家途中被两个人拦住要钱，被拿走{money}和手机",
        ],
    ),
    (
        "CRIM_ASSAULT",
        &[
            "其朋友在{place}与人起冲突，被对方用酒瓶砸在头上，血流不止",
            "{place}有人拿刀伤人，一人腹部受伤，需要救护车",
            "被{party}用砖头打在头上，现场有血迹，对方还在附近",
            "其{rel}被人打伤送到医院，医生说肋骨断了",
        ],
    ),
    (
        "CRIM_OTHER",
        &[
            "有人在{place}附近的扶梯上偷拍女生裙底，已被路人拦下",
            "其{kid}被人关在{place}一间出租屋里，对方要求拿{amount}来赎人",
            "地铁上一男子对其动手动脚，现已在{metro}站下车",
            "{place}附近的垃圾房被人故意点着了，怀疑有人放火",
        ],
    ),
    (
        "FRAUD_TASK",
        &[
            "在{platform}上看到兼职广告，说给视频点赞就能赚钱，开始返了几十元，后来让其做垫付任务，先后转账{amount}后对方不再返款",
            "一网友拉其进群做任务，前几单小额有返现，后称其操作失误需要继续充值才能解冻，共转出{amount}",
            "在家找网上的零活，按对方要求给商品刷好评并先垫付货款，现在钱提不出来，损失{amount}",
            "学生，在{platform}上找兼职，对方让其下载一个APP接单，做了几单后说要连做三单才能提现，转了{amount}",
            "宝妈在家做网络兼职，对方说充得越多返得越多，陆续转了{amount}后账号被封",
        ],
    ),
    (
        "FRAUD_INVEST",
        &[
            "被人拉进一个炒股交流群，群里的老师推荐在一个平台上买股票，前期有盈利，现在要提现时平台要求先交保证金，共投入{amount}",
            "网上认识的人带其买虚拟币，在对方给的网站上充值{amount}，现在网站打不开了",
            "接到自称证券公司的电话，邀请其进群学习理财，后在对方的APP上投资{amount}无法取出",
            "其{rel}在一个理财平台上投了{amount}，说年化收益有20%，现在平台联系不上",
            "跟着直播间的导师做期货，对方让其追加资金，前后转了{amount}，现在账户显示亏光",
        ],
    ),
    (
        "FRAUD_ROMANCE",
        &[
            "在{dating}上认识一名男子，聊了两个月确定了关系，对方以投资、家人生病等理由陆续让其转账{amount}，现已把其拉黑",
            "网上认识的'女朋友'一直没见过面，说要来上海需要路费和保证金，先后转了{amount}",
            "和网友视频聊天后被对方录了屏，对方威胁要发给其通讯录里的人，要求转{amount}",
            "通过婚恋网站认识一男子，对方自称在海外工作，带其在一个平台上投资，现在提不了现，损失{amount}",
        ],
    ),
    (
        "FRAUD_FAKE_CS",
        &[
            "接到自称{shopapp}客服的电话，说其买的东西有质量问题可以退款，按提示操作后银行卡被转走{amount}",
            "有人打电话说其开通了某平台的会员，不取消的话每月自动扣费，按对方要求共享屏幕后被转走{amount}",
            "一自称快递公司的人说其包裹丢了要理赔，发来一个链接让填银行卡信息，随后卡里少了{amount}",
            "对方称其在{shopapp}上开通的保障服务到期要关闭，否则影响个人信用，按要求操作被骗{amount}",
        ],
    ),
    (
        "FRAUD_LOAN",
        &[
            "在网上申请贷款，对方称其银行卡号填错资金被冻结，需要先交解冻费，共转账{amount}还是没拿到钱",
            "接到电话说可以无抵押借钱，对方要求先交保证金和验资费，转了{amount}后联系不上",
            "下载了一个借钱的APP，显示额度已批，但提现前要先刷流水，转了{amount}",
            "对方说能帮其提高信用卡额度，要先存一笔钱证明还款能力，被骗{amount}",
        ],
    ),
    (
        "FRAUD_FAKE_GOV",
        &[
            "接到自称外地公安局的电话，说其身份证涉嫌一起洗钱案，要求将存款转到所谓的安全账户配合调查，已转{amount}",
            "一男子在视频里穿着警服，给其看了一张'通缉令'，让其不要告诉家人，把钱转过去做资金清查，转了{amount}",
            "其{elder}接到电话说医保卡被人冒用涉案，电话转给'检察官'后被要求转账{amount}，家属发现后报警",
            "对方自称法院工作人员，说其有一张传票没处理，要交保证金，被骗{amount}",
        ],
    ),
    (
        "FRAUD_FAKE_ACQ",
        &[
            "微信上有人冒充其公司老板，拉了一个工作群，说急需给客户打款，财务转了{amount}后发现老板本人不知情",
            "接到'老同学'的电话说换号了，过几天说出了事急需用钱，转了{amount}后再也联系不上",
            "有人用其{rel}的头像加其QQ，说在外地住院要交押金，转账{amount}",
            "一自称是其领导的人让其帮忙先给别人打一笔钱，说第二天就还，转了{amount}",
        ],
    ),
    (
        "FRAUD_SHOPPING",
        &[
            "在{secondhand}上买一部二手手机，付款{money}后卖家一直不发货，现在把其拉黑了",
            "在朋友圈找人代购名牌包，付了{money}定金，对方收钱后失联",
            "在网上买演唱会门票，对方让其私下转账，付了{money}后一直没收到票",
            "在一个网店买宠物猫，交了{money}运费和检疫费后对方还一直要钱",
        ],
    ),
    (
        "FRAUD_CREDIT",
        &[
            "接到电话说其大学时开通过校园贷，现在不注销会影响个人征信，按要求转账{amount}",
            "对方自称金融监管部门工作人员，说可以帮其修复信用记录，先收了{money}服务费后失联",
            "有人打电话说其网贷账户异常，需要把额度清空否则影响征信，被骗{amount}",
        ],
    ),
    (
        "FRAUD_GAME",
        &[
            "孩子在网上卖游戏账号，买家说要交解冻费才能收款，孩子用家长手机转了{money}",
            "在一个交易平台买游戏装备，付款后卖家把账号找回去了，损失{money}",
            "其{kid}玩游戏时有人说免费送皮肤，让扫码后被扣了{money}",
            "在游戏里找人代练，付了{money}后对方把号拉黑了",
        ],
    ),
    (
        "FRAUD_OTHER",
        &[
            "老人在路边被人推销保健品，说能治高血压，花了{money}买回来发现是假的",
            "两名男子在{place}附近称能帮其消灾，让其把金首饰包起来，回家打开发现被掉包成石头",
            "在路边捡到一个钱包，一男子过来说要平分，后让其拿钱作抵押，发现被骗了{money}",
            "有人上门说检查燃气，推销一个报警器收了{money}，事后觉得上当了",
        ],
    ),
    (
        "PUB_FIGHT",
        &[
            "{place}有{n}个人在打架，其中一人倒在地上",
            "{shop}门口两伙人因为口角扭打在一起，场面很乱",
            "其与{party}因{reason}起了冲突，被对方推倒在地，手臂擦伤",
            "{place}有人在打人，对方有好几个人，报警人不敢靠近",
            "在{place}等车时与一名男子发生推搡，对方挥拳打了过来",
        ],
    ),
    (
        "PUB_DRUNK",
        &[
            "一名男子喝多了在{shop}里摔杯子骂人，老板请他离开也不走",
            "{place}有个醉醺醺的人拿着酒瓶在路边大喊大叫，还踢路边停着的车",
            "几个喝了酒的年轻人在{shop}门口闹，拦着路人不让走",
            "一桌客人喝了不少酒，和隔壁桌的人言语冲突，现在在砸店里的椅子",
        ],
    ),
    (
        "PUB_DISORDER",
        &[
            "有人在{place}门口拉横幅堵门，影响正常营业",
            "一名男子在{shop}无故骂店员，还把货架推倒了",
            "{place}有人故意在楼道里泼油漆、乱写字",
            "有人在{road}上拦车，不让车辆通行",
        ],
    ),
    (
        "PUB_DOMESTIC_VIOLENCE",
        &[
            "被其{spouse}打了，脸上有伤，现在躲在{place}楼下不敢回家",
            "邻居称隔壁{room}经常传来打孩子的哭喊声，现在又在打",
            "其{spouse}酒后对其拳脚相加，已经不是第一次了",
            "女儿打电话说被女婿打了，要求民警去看看",
        ],
    ),
    (
        "PUB_VICE",
        &[
            "{place}一间棋牌室里每天晚上有人聚在一起赌钱，输赢很大",
            "{road}一家足浴店有人提供色情服务",
            "楼上{room}经常有陌生人进出，屋里有怪味，怀疑有人吸毒",
            "{place}附近一处出租屋里有人开赌局，进出的人很多",
        ],
    ),
    (
        "PUB_VANDALISM",
        &[
            "停在{place}的车被人用钥匙划了一长道",
            "早上发现自己的车四个轮胎都被人扎了",
            "{shop}的玻璃门被人故意砸碎",
            "小区门口的道闸被人故意撞坏，对方开车就走",
        ],
    ),
    (
        "PUB_NOISE",
        &[
            "{place}附近一家酒吧音乐开得震天响，已经十二点了还吵得睡不着",
            "楼下跳广场舞的音响开得很大，每天晚上都这样",
            "对面{room}半夜在唱卡拉OK，敲门也不开",
            "{road}一带夜里有人开改装车轰油门，声音很大",
            "隔壁{room}每天半夜开派对，吵得孩子没法睡觉",
        ],
    ),
    (
        "DSP_NEIGHBOUR",
        &[
            "与楼上住户因为漏水的事情发生争执，对方不肯修",
            "对门把鞋柜和杂物堆在楼道里，说了几次不听，今天吵起来了",
            "与楼下住户因为空调外机滴水的事发生口角",
            "隔壁家的狗每天乱叫，上门沟通时双方吵了起来",
            "隔壁装修把其家墙面弄裂了，双方协商不成",
            "{place}{bldg}两户人家因为公共区域放东西的问题争吵",
        ],
    ),
    (
        "DSP_FAMILY",
        &[
            "与{spouse}因为孩子上学的事情吵架，对方要把其赶出家门",
            "和{rel}因为房子怎么分的问题吵架，情绪很激动",
            "婆媳之间因为带孩子的事闹矛盾，吵得很凶",
            "{age}老人称儿子不给生活费，要求民警帮忙调解",
            "夫妻俩闹离婚，为了谁带孩子在家里吵了一晚上",
        ],
    ),
    (
        "DSP_CONSUMER",
        &[
            "在{shop}消费后对价格有异议，店家收了{money}，认为收费不合理",
            "在{shop}办了一张会员卡，现在店要关门了不给退钱",
            "买的{item}第二天就坏了，商家不肯退换",
            "在饭店吃饭吃出异物，与老板协商赔偿没谈拢",
            "一桌客人吃完饭不肯付钱，与店员发生争执",
            "在{shop}剪了个头发被收了{money}，觉得被坑了",
        ],
    ),
    (
        "DSP_DEBT",
        &[
            "朋友向其借了{amount}，说好上个月还，现在电话不接",
            "一伙人上门找其{rel}要账，堵在门口不走",
            "与合伙人因为账目问题发生纠纷，对方欠其{amount}",
            "前同事借钱一直不还，还把其微信拉黑了",
        ],
    ),
    (
        "DSP_LABOUR",
        &[
            "在{place}附近一个工地干活，{n}个月的工钱一直没结，十几个工人在工地门口讨要",
            "公司突然关门，老板联系不上，员工的钱都没发",
            "辞职后公司扣着最后一个月的薪水不给，与人事发生争执",
            "做了两个月的外卖骑手，站点不给结算工资",
        ],
    ),
    (
        "DSP_TENANCY",
        &[
            "退租时房东以墙面脏为由不退押金{money}",
            "二房东突然要求其三天内搬走，还把门锁换了",
            "租客拖欠{n}个月房租，人联系不上，房东想进屋查看",
            "与中介因为合同里的服务费发生纠纷",
        ],
    ),
    (
        "DSP_PROPERTY_MGMT",
        &[
            "{place}的保安不让其电瓶车进小区，双方发生口角",
            "小区停车费突然涨价，业主与物业在门口争吵",
            "家里漏水找物业维修拖了一个星期，与物业经理吵了起来",
            "门禁卡被物业停用了，说是没交物业费，进不了小区",
        ],
    ),
    (
        "DSP_TRAFFIC",
        &[
            "在{road}与{road2}路口与一辆{car}发生剐蹭，双方对责任有争议",
            "倒车时碰到了后面的电瓶车，对方开口要{money}，认为太多",
            "在{place}停车场与人擦碰，对方不肯走保险要私了",
            "骑电瓶车与一辆{car}碰了一下，人没事，车灯坏了，对方不肯赔",
        ],
    ),
    (
        "DSP_TOURIST",
        &[
            "在七宝老街一家店买了{snack}，付款后发现价格和标的不一样，与店家争执",
            "带团的游客在老街与商户因拍照问题发生口角",
            "外地游客在七宝老街买的纪念品被多收钱，商家不肯退",
            "游客称在老街一家饭店吃饭被宰，一盘虾收了{money}",
            "在七宝老街排队买{snack}时与其他游客发生推搡",
        ],
    ),
    (
        "DSP_OTHER",
        &[
            "与快递员因为送件的事吵起来，对方态度很差",
            "在{place}因为抢车位和别人发生口角",
            "与驾校因为退学费的事有矛盾，对方不肯退",
            "在医院排队时与人发生争执",
            "打车时与司机因为绕路的事吵起来，司机不让下车",
        ],
    ),
    (
        "TRF_ACCIDENT",
        &[
            "{road}与{road2}路口两辆车撞在一起，有人受伤",
            "一辆{car}在{road}上撞到一个骑电瓶车的老人，老人躺在地上",
            "{road}高架下匝道处三车追尾，车横在路中间",
            "一辆货车在{road}侧翻，货物散落一地",
            "{road}上一辆电瓶车和一辆{car}相撞，骑车人腿受伤了",
        ],
    ),
    (
        "TRF_CONGESTION",
        &[
            "{road}往{road2}方向堵了半小时一动不动，前面好像有车抛锚",
            "{road}与{road2}路口红绿灯不亮了，车辆乱成一团",
            "早上{road}上车排了很长的队，路口没人指挥",
            "{place}附近道路大量网约车停在路中间接客，车过不去",
        ],
    ),
    (
        "TRF_PARKING",
        &[
            "其车被一辆{car}挡住了出不去，车上没留电话",
            "{place}门口的消防通道被车堵住了，请求挪车",
            "自己的车位被别人的车停了，找不到车主",
            "{road}路边车辆乱停，公交车过不去",
        ],
    ),
    (
        "TRF_DUI",
        &[
            "{road}上有一辆{car}开得歪歪扭扭，司机好像喝了酒",
            "看到一名男子在{shop}喝完酒后自己开车走了，车牌{plate}",
            "发生刮擦后对方司机满身酒气，怀疑酒后开车",
        ],
    ),
    (
        "HAZ_FIRE",
        &[
            "{place}{bldg}楼上有一户窗口往外冒黑烟",
            "{shop}后厨烧起来了，火势不小",
            "楼道里一辆电瓶车在充电时突然烧了起来",
            "{road}路边一辆车的发动机舱冒烟起火",
        ],
    ),
    (
        "HAZ_GAS",
        &[
            "楼道里闻到很重的煤气味，不知道是哪家漏气",
            "{shop}里的液化气罐阀门漏气，能听到嘶嘶声",
            "家里燃气灶关了还有味道，怀疑管道漏气",
        ],
    ),
    (
        "HAZ_UTILITY",
        &[
            "{road}路面上一处水管爆了，水一直往外冒",
            "{place}整栋楼突然停电，电梯里困了人",
            "楼上漏水，水顺着天花板往下滴，楼上家里没人",
            "{road}上一个窨井盖不见了，很危险",
            "下暴雨后{place}地下车库进水了",
        ],
    ),
    (
        "HAZ_FALLING_OBJECT",
        &[
            "走在{place}楼下时，楼上扔下来一个花盆，差点砸到人",
            "{place}{bldg}外墙瓷砖脱落，掉在人行道上",
            "有人从楼上往下扔垃圾，砸到了停在下面的车",
        ],
    ),
    (
        "HELP_MISSING_PERSON",
        &[
            "其{age}的{elder}早上出门买菜到现在还没回来，老人记性不好",
            "在{place}和{kid}走散了，孩子{kidage}岁，穿{clothes}",
            "其{rel}昨晚出门后一直联系不上，手机关机",
            "在路上遇到一名老人说不清家在哪里，请求民警帮忙",
        ],
    ),
    (
        "HELP_LOST_PROPERTY",
        &[
            "乘坐出租车时把{item}落在车上了，只记得是一辆{taxi}",
            "在{place}附近丢了一个包，里面有证件和{money}现金",
            "下地铁时把电脑包忘在座位上了",
            "手机不知道掉在哪了，想请民警帮忙找一下",
        ],
    ),
    (
        "HELP_LOCKOUT",
        &[
            "出门倒垃圾门被风带上了，钥匙在屋里，灶上还烧着水",
            "钥匙找不到了进不了家门，小孩一个人在屋里",
            "{age}老人被关在门外进不去，要求帮忙联系开锁",
        ],
    ),
    (
        "HELP_MEDICAL",
        &[
            "{place}有一名老人突然倒地不起，叫不醒",
            "其{rel}在家中突然全身发抖，口吐白沫",
            "路边有人昏过去了，已经有路人在帮忙",
            "{shop}里一名顾客突然胸口疼得站不起来，需要急救",
        ],
    ),
    (
        "HELP_SUICIDE",
        &[
            "有一名女子站在{place}{bldg}楼顶边上，情绪很不稳定",
            "其朋友发微信说不想活了，现在联系不上，怀疑在家中",
            "{river}边有人掉进水里，在水里挣扎",
            "其{rel}留下一封信离家出走，信里说要寻短见",
        ],
    ),
    (
        "HELP_INTOXICATED",
        &[
            "{place}路边躺着一名男子，浑身酒味，怎么叫都不醒",
            "一名喝得烂醉的女子坐在{road}马路中间，很危险",
            "朋友喝多了倒在{shop}门口，叫不醒，请求帮助",
        ],
    ),
    (
        "HELP_OTHER",
        &[
            "{place}{bldg}的电梯卡在两层之间，里面有人",
            "{age}老人在家摔倒起不来，子女不在身边",
            "车陷在{road}边的泥地里出不来，请求帮忙",
            "外地来沪务工人员钱包丢了，身无分文，请求帮助",
        ],
    ),
    (
        "RPT_TIP",
        &[
            "{place}一间出租屋里每天有很多年轻人进出，上课喊口号，像是搞传销",
            "有人在{secondhand}上卖假证件，地址在{town}",
            "{road}附近有一名男子鬼鬼祟祟，一直在拉路边车的车门",
            "知道一名在逃人员现在住在{place}",
        ],
    ),
    (
        "RPT_SUBLET",
        &[
            "{place}{bldg}{room}被二房东隔成十几间，住了二十多个人",
            "楼下一套房子住了很多人，摆着上下铺，进进出出很吵",
            "隔壁房子被改成很多小间出租，存在消防隐患",
        ],
    ),
    (
        "RPT_POLICE_COMPLAINT",
        &[
            "上午报的警到现在还没有人来处理，要求投诉",
            "对昨天处理纠纷的民警态度不满意，要投诉",
            "认为派出所对其案件处理不公，要求上级调查",
        ],
    ),
    (
        "NONP_STREET_VENDING",
        &[
            "{road}路口有人摆摊卖水果，占了半条人行道",
            "{place}门口每天晚上有流动摊贩卖烧烤，油烟很大",
            "{place}附近有人在路边卖东西，影响通行",
        ],
    ),
    (
        "NONP_ILLEGAL_BUILD",
        &[
            "楼下一楼住户在院子里私自搭了一个棚子",
            "顶楼邻居在楼顶加盖了一间房",
            "{place}有人在绿化带上砌墙围地",
        ],
    ),
    (
        "NONP_CONSTRUCTION_NOISE",
        &[
            "{road}上一个工地晚上十一点还在打桩",
            "楼上装修天天电钻声，早上七点就开始",
            "附近工地夜里还在干活，渣土车来回开",
        ],
    ),
    (
        "NONP_CONSULT",
        &[
            "询问身份证丢了怎么补办",
            "想问一下外地户口的孩子在上海上学需要办什么证明",
            "问居住证办理需要准备哪些材料",
            "咨询护照到期后在哪里可以换",
        ],
    ),
    (
        "NONP_ANIMAL",
        &[
            "{place}有几条流浪狗在追人",
            "家里进了一条蛇，不知道有没有毒",
            "一只猫被困在{place}的空调外机上下不来",
            "被邻居家的狗咬了一口，对方不肯赔打疫苗的钱",
        ],
    ),
    (
        "OTH_INVALID",
        &[
            "无声电话",
            "接通后无人说话，回拨无人接听",
            "报警人称打错了",
            "小孩玩电话",
            "来电无人应答即挂断",
            "一男子来电胡言乱语，询问无果",
            "来电要求民警陪其聊天",
            "来电称测试一下110能不能打通",
            "接通后只有背景音，无人说话",
            "来电称手机放口袋里误碰，没事",
            "对方接通后一直不说话，后挂机",
            "老人按错号码，本想打给子女",
        ],
    ),
    (
        "OTH_UNCLASSIFIED",
        &[
            "来电称有情况要反映，说了一半挂断",
            "报警人反映{place}有异常情况，具体说不清",
            "来电要求找某民警，称有私事",
            "反映的问题不属于公安管辖，已做解释",
        ],
    ),
];

/// Templates of repeat calls: the same caller rings again about an incident already reported.
pub(crate) const REPEAT_TEMPLATES: &[&str] = &[
    "报警人再次来电催促，称{summary}",
    "同一报警人第{n}次来电，称民警还没到，{summary}",
    "报警人又打来电话，询问民警什么时候到",
    "报警人重复来电，情况同前：{summary}",
    "再次来电，称刚才报的事情对方还在现场",
];

const CALL_PREFIXES: &[&str] = &[
    "报警人称",
    "报警人称",
    "报警人称",
    "来电称",
    "来电称",
    "报警人来电称",
    "一男子来电称",
    "一女子报警称",
    "事主报称",
    "群众报警称",
    "报警人反映",
    "",
    "",
];
const CALL_SUFFIXES: &[&str] = &[
    "",
    "",
    "",
    "，要求民警到场处理",
    "，请求处理",
    "，请求民警帮助",
    "，现对方已离开",
    "，现场双方情绪激动",
    "，报警人在现场等候",
    "。",
    "，具体情况到场了解",
];
const QR_PREFIXES: &[&str] = &[
    "",
    "",
    "",
    "你好，",
    "您好，",
    "我要反映：",
    "我家",
    "麻烦看一下，",
];
const QR_SUFFIXES: &[&str] = &[
    "",
    "",
    "，希望尽快处理",
    "，麻烦派人来看看",
    "，谢谢",
    "，已经不是第一次了",
];
/// Asides an operator adds while typing.
const FILLERS: &[&str] = &[
    "（报警人语速很快）",
    "，具体说不清楚",
    "，现场有群众围观",
    "，报警人情绪激动",
    "，对方也在现场",
];
/// Occasional slips of a hurried typist: homophones, mostly.
const TYPOS: &[(&str, &str)] = &[
    ("在", "再"),
    ("已经", "以经"),
    ("账", "帐"),
    ("的", "得"),
    ("那", "哪"),
    ("做", "作"),
    ("像", "象"),
];

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.get(rng.random_range(0..list.len().max(1)))
        .copied()
        .unwrap_or("")
}

fn amount(rng: &mut ChaCha8Rng) -> String {
    // Fraud losses: long-tailed, from a few thousand to several hundred thousand yuan.
    let yuan = (3_000.0 * (rng.random::<f64>() * 5.0).exp()).round() as u64;
    match rng.random_range(0..3) {
        0 if yuan >= 10_000 => format!("{:.1}万元", yuan as f64 / 10_000.0),
        1 if yuan >= 10_000 => format!("人民币{}万余元", yuan / 10_000),
        _ => format!("{yuan}元"),
    }
}

fn money(rng: &mut ChaCha8Rng) -> String {
    let v = [
        50, 80, 100, 200, 260, 300, 450, 500, 680, 800, 1000, 1200, 1500, 2000, 2800, 3000, 5000,
    ];
    format!("{}元", v[rng.random_range(0..v.len())])
}

fn slot(name: &str, spot: &Spot, rng: &mut ChaCha8Rng) -> String {
    match name {
        "place" => spot.name(),
        "road" => spot.road.clone(),
        "road2" => spot.road2.clone(),
        "bldg" => format!("{}号", spot.building),
        "room" => format!("{}室", spot.room),
        "town" => spot.town_name.clone(),
        "amount" => amount(rng),
        "money" => money(rng),
        "n" => rng.random_range(2..=5).to_string(),
        "time" => pick(rng, &["今天", "今天傍晚", "昨晚", "刚才", "中午", "晚上"]).to_owned(),
        "item" => pick(
            rng,
            &[
                "手机",
                "钱包",
                "笔记本电脑",
                "平板电脑",
                "一部苹果手机",
                "耳机",
                "相机",
                "身份证和银行卡",
            ],
        )
        .to_owned(),
        "homeitem" => pick(
            rng,
            &[
                "金项链和手镯",
                "两万多元现金",
                "一台笔记本电脑",
                "几块手表",
                "首饰盒",
                "几条香烟和两瓶酒",
                "存折和金条",
            ],
        )
        .to_owned(),
        "bike" => pick(
            rng,
            &["电瓶车", "电动自行车", "自行车", "共享单车", "摩托车"],
        )
        .to_owned(),
        "car" => format!(
            "{}{}",
            pick(rng, &["白色", "黑色", "银色", "红色", "灰色"]),
            pick(
                rng,
                &[
                    "大众",
                    "别克",
                    "特斯拉",
                    "比亚迪",
                    "丰田",
                    "宝马",
                    "面包车",
                    "出租车",
                    "快递三轮车"
                ]
            )
        ),
        "plate" => format!(
            "沪{}{:05}",
            pick(rng, &["A", "B", "C", "D", "E", "F", "G", "N"]),
            rng.random_range(0..100_000)
        ),
        "rel" => pick(
            rng,
            &[
                "丈夫", "妻子", "儿子", "女儿", "父亲", "母亲", "弟弟", "姐姐",
            ],
        )
        .to_owned(),
        "spouse" => pick(rng, &["丈夫", "老公", "妻子", "男朋友", "前夫"]).to_owned(),
        "kid" => pick(rng, &["儿子", "女儿", "孙子", "外孙女"]).to_owned(),
        "kidage" => rng.random_range(3..=12).to_string(),
        "elder" => pick(rng, &["父亲", "母亲", "爷爷", "外婆", "老伴"]).to_owned(),
        "age" => format!("{}多岁", pick(rng, &["七十", "八十", "六十"])),
        "clothes" => pick(
            rng,
            &["红色外套", "蓝色校服", "黄色羽绒服", "白色T恤和牛仔裤"],
        )
        .to_owned(),
        "shop" => pick(
            rng,
            &[
                "饭店",
                "理发店",
                "水果店",
                "奶茶店",
                "超市",
                "烧烤店",
                "便利店",
                "KTV",
                "棋牌室",
                "小吃店",
                "酒吧",
                "健身房",
            ],
        )
        .to_owned(),
        "platform" => pick(
            rng,
            &["抖音", "微信群", "QQ群", "小红书", "一个招聘网站", "快手"],
        )
        .to_owned(),
        "shopapp" => pick(rng, &["淘宝", "京东", "拼多多", "某电商平台", "某快递公司"]).to_owned(),
        "secondhand" => pick(rng, &["闲鱼", "二手交易平台", "转转", "朋友圈"]).to_owned(),
        "dating" => pick(rng, &["一个交友软件", "婚恋网站", "探探", "微信附近的人"]).to_owned(),
        "metro" => pick(
            rng,
            &[
                "地铁1号线",
                "地铁5号线",
                "地铁9号线",
                "地铁10号线",
                "地铁12号线",
            ],
        )
        .to_owned(),
        "bus" => pick(
            rng,
            &["公交车", "闵行11路", "徐闵线", "莘庄2路", "743路公交"],
        )
        .to_owned(),
        "snack" => pick(
            rng,
            &["臭豆腐", "汤团", "糖画", "羊肉串", "特产", "扎染围巾"],
        )
        .to_owned(),
        "dir" => pick(rng, &["东", "南", "西", "北", "地铁站"]).to_owned(),
        "river" => pick(rng, &["黄浦江", "淀浦河", "春申塘", "北横泾", "小区河道"]).to_owned(),
        "reason" => pick(
            rng,
            &["插队", "停车", "一点小事", "走路碰了一下", "说话难听"],
        )
        .to_owned(),
        "party" => pick(
            rng,
            &["一名陌生男子", "邻居", "同事", "一个外卖骑手", "对方司机"],
        )
        .to_owned(),
        "taxi" => pick(rng, &["绿色出租车", "蓝色出租车", "网约车", "白色出租车"]).to_owned(),
        _ => String::new(),
    }
}

/// Replaces every `{slot}` of `template`.
pub(crate) fn fill(template: &str, spot: &Spot, rng: &mut ChaCha8Rng, summary: &str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        if name == "summary" {
            out.push_str(summary);
        } else {
            out.push_str(&slot(name, spot, rng));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The description of one event: a filled template with the channel's prefix and suffix, an
/// occasional aside and an occasional typo. Invalid calls keep their terse operator notes.
pub(crate) fn describe(code: &str, qr: bool, spot: &Spot, rng: &mut ChaCha8Rng) -> String {
    let templates = TEMPLATES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(&[][..], |(_, t)| *t);
    let body = fill(pick(rng, templates), spot, rng, "");
    if code == "OTH_INVALID" {
        return body;
    }
    let mut text = if qr {
        format!(
            "{}{}{}",
            pick(rng, QR_PREFIXES),
            body,
            pick(rng, QR_SUFFIXES)
        )
    } else {
        let mut t = format!("{}{}", pick(rng, CALL_PREFIXES), body);
        if rng.random_bool(0.08) {
            t.push_str(pick(rng, FILLERS));
        }
        t.push_str(pick(rng, CALL_SUFFIXES));
        t
    };
    if rng.random_bool(0.04) {
        let (from, to) = TYPOS[rng.random_range(0..TYPOS.len())];
        if let Some(pos) = text.find(from) {
            text.replace_range(pos..pos + from.len(), to);
        }
    }
    text
}

/// The description of a repeat call about an earlier one.
pub(crate) fn describe_repeat(original: &str, spot: &Spot, rng: &mut ChaCha8Rng) -> String {
    let body = CALL_PREFIXES
        .iter()
        .filter(|p| !p.is_empty())
        .find_map(|p| original.strip_prefix(p))
        .unwrap_or(original);
    let summary: String = body.chars().take(30).collect();
    fill(pick(rng, REPEAT_TEMPLATES), spot, rng, &summary)
}

/// Number of distinct template shapes (templates × call/QR framings), for the docs and a test.
pub fn shape_count() -> usize {
    TEMPLATES.iter().map(|(_, t)| t.len()).sum::<usize>() + REPEAT_TEMPLATES.len()
}
