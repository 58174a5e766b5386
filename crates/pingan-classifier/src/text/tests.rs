//! Behavioural tests of the rules with the builtin lexicon (the model on top of them is tested
//! in `crate::model` and through the corpus reports).

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

/// The classifier is expensive to build (jieba's dictionary), so tests share one. These tests
/// pin down what the rules do, so they run without the model.
fn clf() -> &'static TextClassifier {
    static CLF: OnceLock<TextClassifier> = OnceLock::new();
    CLF.get_or_init(|| TextClassifier::rules_only().expect("builtin lexicon is valid"))
}

fn classify(text: &str) -> TextClassification {
    clf().classify(&TextInput::new(text))
}

fn subtype(text: &str) -> &'static str {
    classify(text).subtype
}

#[test]
fn builtin_files_are_valid() {
    assert!(clf().rule_count() > 500);
    for word in [
        "报警人",
        "刷单返利",
        "杀猪盘",
        "冒充公检法",
        "安全账户",
        "挪车",
        "噪音扰民",
    ] {
        assert!(
            clf().keywords.has_word(word),
            "{word} missing from user dictionary"
        );
    }
}

#[test]
fn precedence_fire_beats_everything_but_invalid() {
    assert_eq!(subtype("邻居家着火了"), "HAZ_FIRE");
    assert_eq!(
        subtype("两个人打架，把楼道里的东西点着了，着火了"),
        "HAZ_FIRE"
    );
    assert_eq!(
        subtype("被骗子骗了钱，对方说要烧了我家，现在楼下起火了"),
        "HAZ_FIRE"
    );
    assert_eq!(subtype("小偷偷电瓶车时引起火灾"), "HAZ_FIRE");
    assert_eq!(classify("楼下起火了").rule, "group:life_safety");
}

#[test]
fn precedence_robbery_beats_theft() {
    assert_eq!(subtype("有人抢走了我的包，包里的钱被偷了"), "CRIM_ROBBERY");
    assert_eq!(subtype("报警人称被人抢劫"), "CRIM_ROBBERY");
}

#[test]
fn fraud_anchor_beats_theft() {
    assert_eq!(subtype("报警人称支付宝里的钱被转走了"), "FRAUD_OTHER");
    let r = classify("刷单被骗了三千");
    assert_eq!(r.subtype, "FRAUD_TASK");
    assert_eq!(r.rule, "group:fraud");
}

#[test]
fn fraud_needs_an_anchor() {
    // 客服/投资 alone are not fraud.
    assert_ne!(category_of(subtype("我想咨询一下投资理财的事情")), "FRAUD");
    assert_eq!(subtype("客服说要给我退款，让我共享屏幕"), "FRAUD_FAKE_CS");
}

#[test]
fn leftmost_longest_prefers_specific_terms() {
    assert_eq!(subtype("报警人称家中发生入室盗窃"), "CRIM_BURGLARY");
    assert_eq!(subtype("停在楼下的电瓶车被偷了"), "CRIM_CYCLE_THEFT");
}

#[test]
fn negation_turns_theft_into_lost_property() {
    let r = classify("不是被偷，是忘在出租车上了");
    assert_eq!(r.subtype, "HELP_LOST_PROPERTY");
    let stolen = r
        .evidence
        .iter()
        .find(|e| e.term == "被偷")
        .expect("kept in evidence");
    assert!(stolen.negated);
    assert!(!stolen.counted);
}

#[test]
fn negated_injury_is_not_a_tag() {
    let r = classify("两车追尾，没有人受伤");
    assert_eq!(r.subtype, "TRF_ACCIDENT");
    assert!(!r.tags.contains(&"injury"));
}

#[test]
fn party_cues_choose_dispute_subtypes() {
    assert_eq!(subtype("和邻居吵架了"), "DSP_NEIGHBOUR");
    assert_eq!(subtype("房东不退押金，吵起来了"), "DSP_TENANCY");
    assert_eq!(subtype("店家不给退钱"), "DSP_CONSUMER");
    assert_eq!(subtype("老板拖欠工资不给"), "DSP_LABOUR");
    assert_eq!(subtype("和物业因为停车费发生纠纷"), "DSP_PROPERTY_MGMT");
    assert_eq!(subtype("游客和导游吵起来了"), "DSP_TOURIST");
    assert_eq!(subtype("两个人在路边吵架"), "DSP_OTHER");
    // A party word without a quarrel is not a dispute.
    assert_ne!(subtype("邻居家门口有个包裹"), "DSP_NEIGHBOUR");
}

#[test]
fn scenic_area_turns_generic_disputes_into_tourist_disputes() {
    let input = TextInput {
        scenic_area: true,
        ..TextInput::new("买东西的时候和店家吵起来了")
    };
    let r = clf().classify(&input);
    assert_eq!(r.subtype, "DSP_TOURIST");
    assert_eq!(r.rule, "bend:scenic_dispute");
}

#[test]
fn fights_escalate_with_weapons_or_blood() {
    assert_eq!(subtype("饭店门口有人打架"), "PUB_FIGHT");
    let r = classify("两个人打起来了，一个拿刀，对方流血了");
    assert_eq!(r.subtype, "CRIM_ASSAULT");
    assert_eq!(r.tags, vec!["injury", "weapon"]);
}

#[test]
fn alcohol_decisions() {
    // One drunk person hitting: 醉酒滋事 with the alcohol tag.
    let r = classify("有人喝多了打人");
    assert_eq!(r.subtype, "PUB_DRUNK");
    assert_eq!(r.rule, "bend:drunk_disorder");
    assert_eq!(r.tags, vec!["alcohol"]);
    // A mutual brawl among drinkers stays a fight.
    assert_eq!(subtype("几个人喝多了互殴"), "PUB_FIGHT");
    assert_eq!(subtype("有人醉驾"), "TRF_DUI");
    assert_eq!(subtype("有人喝多了还要开车"), "TRF_DUI");
    assert_eq!(subtype("路边躺着一个喝醉的人，叫不醒"), "HELP_INTOXICATED");
    assert_eq!(subtype("路边躺着一个老人，叫不醒"), "HELP_MEDICAL");
}

#[test]
fn domestic_violence_with_injury_stays_domestic() {
    let r = classify("被老公打了，头都流血了");
    assert_eq!(r.subtype, "PUB_DOMESTIC_VIOLENCE");
    assert!(r.tags.contains(&"injury"));
}

#[test]
fn abbreviations_and_width_are_normalised() {
    assert_eq!(subtype("ＷＸ上有人冒充领导让我转账"), "FRAUD_FAKE_ACQ");
    assert_eq!(subtype("在Dy上做任务返利，转了钱被骗"), "FRAUD_TASK");
    assert_eq!(subtype("SHUA DAN被骗了"), "FRAUD_TASK");
    assert_eq!(subtype("zfb里的钱被转走了"), "FRAUD_OTHER");
    assert_eq!(subtype("对面KTV太吵了"), "PUB_NOISE");
    assert_eq!(subtype("买了USDT，平台提不出来，被骗了"), "FRAUD_INVEST");
    // Latin terms do not match inside other words.
    let r = classify("happy birthday");
    assert!(r.evidence.iter().all(|e| e.term != "app"));
}

#[test]
fn tags_from_text() {
    assert_eq!(classify("醉汉在店里耍酒疯").tags, vec!["alcohol"]);
    assert_eq!(classify("有人持刀伤人").tags, vec!["injury", "weapon"]);
    assert!(classify("有人在路边唱歌").tags.is_empty());
}

#[test]
fn qr_kind_and_operator_priors_decide_only_weak_text() {
    let weak = TextInput {
        qr_kind: Some("dispute"),
        ..TextInput::new("他们不讲理")
    };
    let r = clf().classify(&weak);
    assert_eq!(r.subtype, "DSP_OTHER");
    assert_eq!(r.rule, "prior:qr_kind");

    let help = TextInput {
        qr_kind: Some("help"),
        ..TextInput::new("麻烦你们来一下")
    };
    assert_eq!(clf().classify(&help).subtype, "HELP_OTHER");

    let consult = TextInput {
        qr_kind: Some("consult"),
        ..TextInput::new("有个事情")
    };
    assert_eq!(clf().classify(&consult).subtype, "NONP_CONSULT");

    // Party cue + dispute prior: the prior stands in for the quarrel word.
    let party = TextInput {
        qr_kind: Some("dispute"),
        ..TextInput::new("邻居太过分")
    };
    assert_eq!(clf().classify(&party).subtype, "DSP_NEIGHBOUR");

    let op = TextInput {
        operator_category: Some("诈骗"),
        ..TextInput::new("对方让他往平台投钱")
    };
    assert_eq!(clf().classify(&op).subtype, "FRAUD_INVEST");

    let code = TextInput {
        operator_category: Some("TRF_PARKING"),
        ..TextInput::new("过来看看")
    };
    assert_eq!(clf().classify(&code).subtype, "TRF_PARKING");

    // Strong text wins over the prior.
    let strong = TextInput {
        qr_kind: Some("dispute"),
        ..TextInput::new("楼下着火了")
    };
    assert_eq!(clf().classify(&strong).subtype, "HAZ_FIRE");
    let op_fire = TextInput {
        operator_category: Some("纠纷"),
        ..TextInput::new("有人跳河了")
    };
    assert_eq!(clf().classify(&op_fire).subtype, "HELP_SUICIDE");
}

#[test]
fn invalid_calls() {
    for text in [
        "",
        "   ",
        "\n\t",
        "😀😀",
        "！！！",
        "无声",
        "打错了",
        "电话接通后无人说话，随即挂断",
    ] {
        assert_eq!(subtype(text), "OTH_INVALID", "{text:?}");
    }
    assert_eq!(classify("").rule, "empty_text");
    // A hang-up inside a real report does not make it invalid.
    assert_eq!(subtype("骗子让我转账后就挂断了电话"), "FRAUD_OTHER");
    // An operator category on an empty note is trusted.
    let op = TextInput {
        operator_category: Some("火警"),
        ..TextInput::new("")
    };
    assert_eq!(clf().classify(&op).subtype, "HAZ_FIRE");
}

#[test]
fn no_evidence_is_unclassified() {
    let r = classify("报警人称有事情要当面说");
    assert_eq!(r.subtype, "OTH_UNCLASSIFIED");
    assert_eq!(r.rule, "no_evidence");
    assert_eq!(r.score, 0.0);
}

#[test]
fn scores_and_runner_up() {
    let r = classify("刷单被骗，对方让我转账");
    assert!(r.score > 0.0 && r.score <= 1.0);
    let (code, score) = r.runner_up.expect("runner-up");
    assert_ne!(code, r.subtype);
    assert!((0.0..=1.0).contains(&score));
}

#[test]
fn keywords_use_the_user_dictionary_and_stopwords() {
    let kw = clf().keywords(
        "报警人称有人在门口刷单返利被骗，刷单返利的平台叫什么不知道",
        10,
    );
    assert!(kw.contains(&"刷单返利".to_owned()), "{kw:?}");
    for stop in ["报警人", "有人", "门口", "称"] {
        assert!(!kw.iter().any(|k| k == stop), "{stop} in {kw:?}");
    }
    assert_eq!(kw.iter().filter(|k| *k == "刷单返利").count(), 1);
    assert!(kw.iter().all(|k| k.chars().count() >= 2));
    assert!(clf().keywords("杀猪盘 杀猪盘 冒充公检法 安全账户", 2).len() == 2);
    assert!(clf().keywords("", 5).is_empty());
    assert!(clf().keywords("有人被打", 0).is_empty());
}

#[test]
fn literal_codes_used_by_the_engine_exist() {
    for code in CATCH_ALLS.iter().chain(&[
        "OTH_INVALID",
        "OTH_UNCLASSIFIED",
        "PUB_DOMESTIC_VIOLENCE",
        "PUB_DRUNK",
        "DSP_TOURIST",
        "RPT_TIP",
        "RPT_POLICE_COMPLAINT",
    ]) {
        assert!(subtype_code(code).is_some(), "{code}");
    }
}

#[test]
fn from_lexicon_reports_invalid_rows() {
    let err = TextClassifier::from_lexicon("打架\tPUB_FIGHT\t1\n偷\tNOPE\t1\n打架\tPUB_FIGHT\t2\n")
        .expect_err("invalid");
    let msg = err.to_string();
    assert!(msg.contains("line 2: unknown subtype code `NOPE`"), "{msg}");
    assert!(
        msg.contains("line 3: duplicate term `打架` (first on line 1)"),
        "{msg}"
    );
}

#[test]
fn custom_lexicon_works() {
    let clf = TextClassifier::from_lexicon("打架\tPUB_FIGHT\t1.5\n").expect("valid");
    assert_eq!(
        clf.classify(&TextInput::new("有人打架")).subtype,
        "PUB_FIGHT"
    );
    assert_eq!(
        clf.classify(&TextInput::new("着火了")).subtype,
        "OTH_UNCLASSIFIED"
    );
}

const EVAL_SET: &str = include_str!("../../../../schemas/classifier/eval.jsonl");

#[test]
fn eval_set_is_well_formed_and_covers_every_subtype() {
    let mut counts = std::collections::BTreeMap::new();
    for (idx, line) in EVAL_SET
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line).expect("json line");
        let code = value["subtype"].as_str().expect("subtype string");
        assert!(subtype_code(code).is_some(), "line {}: {code}", idx + 1);
        *counts.entry(code.to_owned()).or_insert(0usize) += 1;
    }
    assert!(counts.values().sum::<usize>() >= 500);
    for code in SUBTYPE_CODES.iter().filter(|c| **c != "OTH_DUPLICATE") {
        let n = counts.get(*code).copied().unwrap_or(0);
        assert!(n >= 5, "{code} has only {n} examples");
    }
}

#[test]
fn eval_report_prints() {
    let cases = crate::evaluation::read_labelled(EVAL_SET).expect("eval set parses");
    let report = crate::evaluation::evaluate(clf(), &cases);
    println!("{report}");
    assert_eq!(
        report.all.total,
        report.per_subtype.iter().map(|s| s.support).sum::<usize>()
    );
}

#[test]
#[ignore = "timing report, run with --ignored --nocapture in release mode"]
fn throughput_report() {
    let texts: Vec<String> = EVAL_SET
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    let rounds = 40;
    let start = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..rounds {
        for t in &texts {
            n += clf().classify(&TextInput::new(t)).evidence.len();
        }
    }
    let classify_rate = (rounds * texts.len()) as f64 / start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for t in &texts {
            n += clf().classify(&TextInput::new(t)).evidence.len();
            n += clf().keywords(t, 10).len();
        }
    }
    let both_rate = (rounds * texts.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "classify: {classify_rate:.0} texts/s; classify+keywords: {both_rate:.0} texts/s ({n})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classification_is_total_and_deterministic(
        text in "\\PC{0,200}",
        qr in proptest::option::of("alarm|help|dispute|consult|[a-z]{0,6}"),
        op in proptest::option::of("纠纷|诈骗|盗窃|交通|求助|火警|[A-Z_]{0,12}|\\PC{0,4}"),
        inside_compound in any::<bool>(),
        scenic_area in any::<bool>(),
    ) {
        let input = TextInput {
            text: &text,
            qr_kind: qr.as_deref(),
            operator_category: op.as_deref(),
            inside_compound,
            scenic_area,
        };
        let a = clf().classify(&input);
        let b = clf().classify(&input);
        prop_assert!(SUBTYPE_CODES.contains(&a.subtype));
        prop_assert_ne!(a.subtype, "OTH_DUPLICATE");
        prop_assert!((0.0..=1.0).contains(&a.score));
        prop_assert_eq!(&a, &b);
        let _ = clf().keywords(&text, 8);
    }

    #[test]
    fn mixed_domain_text_is_total(
        parts in proptest::collection::vec(
            "被偷|没有|不是|打架|刀|流血|喝多了|邻居|吵架|转账|被骗|着火|wx|ＡＰＰ|，|。|😀|[a-z]{1,3}|\\PC{1,3}",
            0..30,
        )
    ) {
        let text = parts.concat();
        let a = clf().classify(&TextInput::new(&text));
        prop_assert!(SUBTYPE_CODES.contains(&a.subtype));
        prop_assert_eq!(&a, &clf().classify(&TextInput::new(&text)));
    }
}

#[test]
fn long_input_is_fine() {
    let text = "有人在门口吵架，".repeat(1500);
    let r = classify(&text);
    assert_eq!(r.subtype, "DSP_OTHER");
    assert!(r.evidence.len() <= MAX_EVIDENCE);
}
