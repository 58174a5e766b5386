//! The subtype codes the text classifier may emit, and the precedence groups
//! that order them.
//!
//! The codes are copied from `schemas/taxonomy.tsv` (the contract); this crate
//! must not depend on `pingan-domain`, so a unit test keeps the two in sync.

/// Every subtype code in the taxonomy, in taxonomy order.
///
/// The rules never produce `OTH_DUPLICATE` (no lexicon cue speaks for it); the model
/// answers it for a text that only chases an earlier report (DOMAIN §5).
pub const SUBTYPE_CODES: [&str; 62] = [
    "CRIM_BURGLARY",
    "CRIM_PICKPOCKET",
    "CRIM_THEFT_FROM_VEHICLE",
    "CRIM_CYCLE_THEFT",
    "CRIM_THEFT_OTHER",
    "CRIM_ROBBERY",
    "CRIM_ASSAULT",
    "CRIM_OTHER",
    "FRAUD_TASK",
    "FRAUD_INVEST",
    "FRAUD_ROMANCE",
    "FRAUD_FAKE_CS",
    "FRAUD_LOAN",
    "FRAUD_FAKE_GOV",
    "FRAUD_FAKE_ACQ",
    "FRAUD_SHOPPING",
    "FRAUD_CREDIT",
    "FRAUD_GAME",
    "FRAUD_OTHER",
    "PUB_FIGHT",
    "PUB_DRUNK",
    "PUB_DISORDER",
    "PUB_DOMESTIC_VIOLENCE",
    "PUB_VICE",
    "PUB_VANDALISM",
    "PUB_NOISE",
    "DSP_NEIGHBOUR",
    "DSP_FAMILY",
    "DSP_CONSUMER",
    "DSP_DEBT",
    "DSP_LABOUR",
    "DSP_TENANCY",
    "DSP_PROPERTY_MGMT",
    "DSP_TRAFFIC",
    "DSP_TOURIST",
    "DSP_OTHER",
    "TRF_ACCIDENT",
    "TRF_CONGESTION",
    "TRF_PARKING",
    "TRF_DUI",
    "HAZ_FIRE",
    "HAZ_GAS",
    "HAZ_UTILITY",
    "HAZ_FALLING_OBJECT",
    "HELP_MISSING_PERSON",
    "HELP_LOST_PROPERTY",
    "HELP_LOCKOUT",
    "HELP_MEDICAL",
    "HELP_SUICIDE",
    "HELP_INTOXICATED",
    "HELP_OTHER",
    "RPT_TIP",
    "RPT_SUBLET",
    "RPT_POLICE_COMPLAINT",
    "NONP_STREET_VENDING",
    "NONP_ILLEGAL_BUILD",
    "NONP_CONSTRUCTION_NOISE",
    "NONP_CONSULT",
    "NONP_ANIMAL",
    "OTH_INVALID",
    "OTH_DUPLICATE",
    "OTH_UNCLASSIFIED",
];

/// Category codes, in taxonomy order.
pub const CATEGORY_CODES: [&str; 10] = [
    "CRIM", "FRAUD", "PUB", "DSP", "TRF", "HAZ", "HELP", "RPT", "NONP", "OTH",
];

/// Returns the `'static` spelling of a subtype code, or `None` if `code` is
/// not in the taxonomy.
pub fn subtype_code(code: &str) -> Option<&'static str> {
    SUBTYPE_CODES.iter().copied().find(|c| *c == code)
}

/// Returns the category code (`"CRIM"`, `"FRAUD"`, …) of a subtype code.
///
/// The category is the prefix before the first `_`; unknown input yields
/// `"OTH"` so callers never have to handle a missing category.
pub fn category_of(subtype: &str) -> &'static str {
    let prefix = subtype.split('_').next().unwrap_or("");
    CATEGORY_CODES
        .iter()
        .copied()
        .find(|c| *c == prefix)
        .unwrap_or("OTH")
}

/// A precedence group: rule groups are tried in this order and the first one
/// whose best subtype reaches the firing threshold wins (DOMAIN §8.1).
///
/// The derived `Ord` is the precedence order, so a `BTreeMap<Group, _>`
/// iterates from the most to the least urgent group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Silent calls, misdials, pranks. Empty text is decided before any group;
    /// invalid *phrases* only win when no other group fires (see `text.rs`).
    Invalid,
    /// Suicide / drowning / falls, fire, gas, medical emergencies.
    LifeSafety,
    /// Robbery, assault, and other violent or serious crime.
    Violent,
    /// Fraud; only eligible when a fraud anchor is present.
    Fraud,
    /// Theft subtypes.
    Theft,
    /// Public order.
    Public,
    /// Disputes.
    Dispute,
    /// Traffic.
    Traffic,
    /// Non-urgent hazards (utilities, falling objects).
    Hazard,
    /// Assistance requests.
    Help,
    /// Tip-offs and complaints.
    Report,
    /// Non-police service requests.
    NonPolice,
    /// Codes the text classifier never scores (`OTH_DUPLICATE`,
    /// `OTH_UNCLASSIFIED`).
    Fallback,
}

/// Returns the precedence group of a subtype code.
///
/// Where DOMAIN §8.1 is silent we chose:
/// - `CRIM_OTHER` (kidnapping, indecent assault, voyeurism) sits with the
///   violent crimes, because those calls are urgent and their cue words
///   (偷拍) would otherwise be read as theft.
/// - `HAZ_UTILITY` and `HAZ_FALLING_OBJECT` form their own group after
///   traffic: they are hazards but not life-safety first, and a dispute about
///   a leak (因漏水发生纠纷) should stay a dispute.
pub fn group_of(subtype: &str) -> Group {
    match subtype {
        "OTH_INVALID" => Group::Invalid,
        "HELP_SUICIDE" | "HAZ_FIRE" | "HAZ_GAS" | "HELP_MEDICAL" => Group::LifeSafety,
        "CRIM_ROBBERY" | "CRIM_ASSAULT" | "CRIM_OTHER" => Group::Violent,
        "HAZ_UTILITY" | "HAZ_FALLING_OBJECT" => Group::Hazard,
        "OTH_DUPLICATE" | "OTH_UNCLASSIFIED" => Group::Fallback,
        _ => match category_of(subtype) {
            "CRIM" => Group::Theft,
            "FRAUD" => Group::Fraud,
            "PUB" => Group::Public,
            "DSP" => Group::Dispute,
            "TRF" => Group::Traffic,
            "HELP" => Group::Help,
            "RPT" => Group::Report,
            "NONP" => Group::NonPolice,
            _ => Group::Fallback,
        },
    }
}

/// [`group_of`] by taxonomy position, computed once: the decision asks it hundreds of times per
/// text, and matching the code strings each time was a tenth of the classifier's time.
pub fn group_at(index: usize) -> Group {
    static GROUPS: std::sync::OnceLock<[Group; 62]> = std::sync::OnceLock::new();
    let groups = GROUPS.get_or_init(|| SUBTYPE_CODES.map(group_of));
    groups.get(index).copied().unwrap_or(Group::Fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_taxonomy_contract() {
        let tsv = include_str!("../../../../schemas/taxonomy.tsv");
        let from_tsv: Vec<&str> = tsv
            .lines()
            .filter(|l| l.starts_with("subtype\t"))
            .filter_map(|l| l.split('\t').nth(2))
            .collect();
        assert_eq!(from_tsv, SUBTYPE_CODES.to_vec());
    }

    #[test]
    fn every_code_has_a_category_and_group() {
        for code in SUBTYPE_CODES {
            assert!(CATEGORY_CODES.contains(&category_of(code)), "{code}");
            let _ = group_of(code);
        }
        for (i, code) in SUBTYPE_CODES.iter().enumerate() {
            assert_eq!(group_at(i), group_of(code));
        }
        assert_eq!(group_of("HAZ_FIRE"), Group::LifeSafety);
        assert_eq!(group_of("CRIM_BURGLARY"), Group::Theft);
        assert!(Group::Fraud < Group::Theft);
    }
}
