//! Weak priors from the QR report kind and the operator's category pick.
//!
//! Priors never override text that fires a rule group; they decide only when
//! the text is weak or absent (see `TextClassifier::classify`), and nudge the
//! choice inside a fired group by a small weight.

use super::taxonomy::{Group, SUBTYPE_CODES, category_of, group_of, subtype_code};

/// Which subtypes a prior speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only the default subtype.
    Subtype,
    /// Every subtype of the default's category.
    Category,
    /// Every subtype of the default's precedence group (theft).
    Group,
}

/// A prior: a default subtype, the subtypes it covers, and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prior {
    /// Index into [`SUBTYPE_CODES`] of the subtype chosen when the text gives
    /// nothing more specific.
    pub(crate) default: usize,
    /// Which subtypes the prior covers.
    pub(crate) scope: Scope,
    /// Bonus added to the default subtype's score inside a fired group.
    pub(crate) weight: f32,
    /// Rule name reported when the prior decides.
    pub(crate) rule: &'static str,
}

impl Prior {
    fn new(code: &str, scope: Scope, weight: f32, rule: &'static str) -> Option<Self> {
        let default = SUBTYPE_CODES.iter().position(|c| *c == code)?;
        Some(Self {
            default,
            scope,
            weight,
            rule,
        })
    }

    /// True if subtype index `idx` is covered by this prior.
    pub(crate) fn covers(&self, idx: usize) -> bool {
        let (Some(code), Some(default)) = (SUBTYPE_CODES.get(idx), SUBTYPE_CODES.get(self.default))
        else {
            return false;
        };
        match self.scope {
            Scope::Subtype => idx == self.default,
            Scope::Category => category_of(code) == category_of(default),
            Scope::Group => group_of(code) == group_of(default),
        }
    }

    /// The default subtype's code.
    pub(crate) fn code(&self) -> &'static str {
        SUBTYPE_CODES
            .get(self.default)
            .copied()
            .unwrap_or("OTH_UNCLASSIFIED")
    }

    /// True if the prior says "this is a dispute", which satisfies party cues.
    pub(crate) fn is_dispute(&self) -> bool {
        group_of(self.code()) == Group::Dispute
    }

    /// True if the prior says "this is fraud", which stands in for an anchor.
    pub(crate) fn is_fraud(&self) -> bool {
        group_of(self.code()) == Group::Fraud
    }
}

/// Operator category labels (Chinese) → default subtype and scope. Checked in
/// order with `contains`, so "盗窃案" and "纠纷类" work; specific words come
/// before generic ones.
const OPERATOR_LABELS: &[(&[&str], &str, Scope)] = &[
    (&["无效", "误拨", "骚扰电话"], "OTH_INVALID", Scope::Subtype),
    (&["火警", "火灾", "消防"], "HAZ_FIRE", Scope::Subtype),
    (&["燃气", "煤气"], "HAZ_GAS", Scope::Subtype),
    (&["险情"], "HAZ_UTILITY", Scope::Category),
    (&["诈骗", "电诈", "反诈"], "FRAUD_OTHER", Scope::Category),
    (&["抢劫", "抢夺"], "CRIM_ROBBERY", Scope::Subtype),
    (
        &["盗窃", "偷盗", "被盗", "扒窃"],
        "CRIM_THEFT_OTHER",
        Scope::Group,
    ),
    (&["伤害", "伤人"], "CRIM_ASSAULT", Scope::Subtype),
    (&["刑事"], "CRIM_OTHER", Scope::Category),
    (
        &["家暴", "家庭暴力"],
        "PUB_DOMESTIC_VIOLENCE",
        Scope::Subtype,
    ),
    (&["打架", "斗殴"], "PUB_FIGHT", Scope::Subtype),
    (&["噪音", "扰民"], "PUB_NOISE", Scope::Subtype),
    (
        &["黄赌毒", "赌博", "卖淫", "吸毒"],
        "PUB_VICE",
        Scope::Subtype,
    ),
    (&["治安"], "PUB_DISORDER", Scope::Category),
    (&["纠纷", "矛盾"], "DSP_OTHER", Scope::Category),
    (&["挪车", "停车"], "TRF_PARKING", Scope::Subtype),
    (&["事故", "交通"], "TRF_ACCIDENT", Scope::Category),
    (&["走失", "寻人"], "HELP_MISSING_PERSON", Scope::Subtype),
    (&["求助", "救助"], "HELP_OTHER", Scope::Category),
    (&["举报"], "RPT_TIP", Scope::Category),
    (&["投诉"], "RPT_POLICE_COMPLAINT", Scope::Category),
    (&["咨询", "非警务"], "NONP_CONSULT", Scope::Category),
];

/// Category codes → default subtype when the operator sent a category code.
const CATEGORY_DEFAULTS: &[(&str, &str)] = &[
    ("CRIM", "CRIM_OTHER"),
    ("FRAUD", "FRAUD_OTHER"),
    ("PUB", "PUB_DISORDER"),
    ("DSP", "DSP_OTHER"),
    ("TRF", "TRF_ACCIDENT"),
    ("HAZ", "HAZ_FIRE"),
    ("HELP", "HELP_OTHER"),
    ("RPT", "RPT_TIP"),
    ("NONP", "NONP_CONSULT"),
    ("OTH", "OTH_UNCLASSIFIED"),
];

/// Weight of an operator prior inside a fired group.
const OPERATOR_WEIGHT: f32 = 0.6;
/// Weight of a QR-kind prior inside a fired group.
const QR_WEIGHT: f32 = 0.4;

/// Prior from the operator's category: a Chinese label or a taxonomy code.
pub(crate) fn operator(label: &str) -> Option<Prior> {
    let label = label.trim();
    if label.is_empty() {
        return None;
    }
    let upper = label.to_ascii_uppercase();
    if let Some(code) = subtype_code(&upper) {
        // OTH_DUPLICATE is a stream rule; the text classifier never emits it.
        let code = if code == "OTH_DUPLICATE" {
            "OTH_UNCLASSIFIED"
        } else {
            code
        };
        return Prior::new(code, Scope::Subtype, OPERATOR_WEIGHT, "prior:operator");
    }
    if let Some((_, code)) = CATEGORY_DEFAULTS.iter().find(|(cat, _)| *cat == upper) {
        return Prior::new(code, Scope::Category, OPERATOR_WEIGHT, "prior:operator");
    }
    OPERATOR_LABELS
        .iter()
        .find(|(words, _, _)| words.iter().any(|w| label.contains(w)))
        .and_then(|(_, code, scope)| Prior::new(code, *scope, OPERATOR_WEIGHT, "prior:operator"))
}

/// Prior from the QR report kind (`alarm`, `help`, `dispute`, `consult`).
///
/// `alarm` carries no prior: the alarm button is pressed for everything from
/// fights to fires, so it says nothing about the subtype.
pub(crate) fn qr_kind(kind: &str) -> Option<Prior> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "dispute" => Prior::new("DSP_OTHER", Scope::Category, QR_WEIGHT, "prior:qr_kind"),
        "help" => Prior::new("HELP_OTHER", Scope::Category, QR_WEIGHT, "prior:qr_kind"),
        "consult" => Prior::new("NONP_CONSULT", Scope::Subtype, QR_WEIGHT, "prior:qr_kind"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_labels_and_codes() {
        assert_eq!(operator("纠纷").map(|p| p.code()), Some("DSP_OTHER"));
        assert_eq!(
            operator("盗窃案").map(|p| p.code()),
            Some("CRIM_THEFT_OTHER")
        );
        assert_eq!(
            operator("fraud_invest").map(|p| p.code()),
            Some("FRAUD_INVEST")
        );
        assert_eq!(operator("FRAUD").map(|p| p.code()), Some("FRAUD_OTHER"));
        assert_eq!(
            operator("OTH_DUPLICATE").map(|p| p.code()),
            Some("OTH_UNCLASSIFIED")
        );
        assert_eq!(operator("随便写写"), None);
        assert_eq!(operator("  "), None);
    }

    #[test]
    fn qr_kinds() {
        assert_eq!(qr_kind("dispute").map(|p| p.code()), Some("DSP_OTHER"));
        assert_eq!(qr_kind("HELP").map(|p| p.code()), Some("HELP_OTHER"));
        assert_eq!(qr_kind("consult").map(|p| p.code()), Some("NONP_CONSULT"));
        assert_eq!(qr_kind("alarm"), None);
        let theft = operator("盗窃").expect("prior");
        let burglary = SUBTYPE_CODES
            .iter()
            .position(|c| *c == "CRIM_BURGLARY")
            .expect("code");
        let robbery = SUBTYPE_CODES
            .iter()
            .position(|c| *c == "CRIM_ROBBERY")
            .expect("code");
        assert!(theft.covers(burglary));
        assert!(!theft.covers(robbery));
    }
}
