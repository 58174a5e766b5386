//! What happens: the subtype mix of Minhang's 110 traffic, how it shifts with the hour and the
//! day, where each kind of incident happens and how often it arrives as a QR doorplate report.
//!
//! Sources for the proportions (DOMAIN.md §2.3, §3.5): disputes are about half of all valid
//! incidents (Minhang 2019: 50%); invalid calls (silent, prank, misdial) are a large share of
//! all calls (Guangzhou ~30%, other cities far more), here about 18%; fraud follows the MPS 2023
//! ranking by case count (刷单返利 about a third, then investment, fake customer service,
//! loans …); traffic is mostly minor collisions, parking and the weekday morning peak.
//! The weights are relative; [`Mix::weights_at`] reshapes them per hour.

use chrono::{DateTime, FixedOffset, Timelike};

use crate::rates::is_leisure_day;

/// How a subtype's share changes over the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Same share at every hour.
    Flat,
    /// Mostly daytime (08–20 h).
    Day,
    /// Office hours (09–18 h): labour disputes, consultations.
    Business,
    /// Evenings (17–24 h): family rows, noise, parking.
    Evening,
    /// Night (21–03 h): drunks, fights, robbery.
    Night,
    /// Commuter peaks on weekdays: congestion.
    Commute,
    /// Daytime on weekends and holidays: tourists.
    Leisure,
    /// Invalid calls: a little more at night (pranks, pocket dials from bars).
    Invalid,
}

impl Profile {
    fn factor(self, t: &DateTime<FixedOffset>) -> f64 {
        let h = t.hour();
        let leisure = is_leisure_day(t);
        match self {
            Profile::Flat => 1.0,
            Profile::Day => match h {
                8..=19 => 1.25,
                6 | 7 | 20 | 21 => 0.9,
                _ => 0.45,
            },
            Profile::Business => match (h, leisure) {
                (9..=17, false) => 1.5,
                (9..=17, true) => 0.6,
                (7 | 8 | 18..=20, _) => 0.8,
                _ => 0.2,
            },
            Profile::Evening => match h {
                17..=23 => 1.6,
                12..=16 => 0.9,
                0..=2 => 1.0,
                _ => 0.45,
            },
            Profile::Night => match h {
                21..=23 | 0..=2 => 2.6,
                18..=20 => 1.0,
                _ => 0.45,
            },
            Profile::Commute => match (h, leisure) {
                (7 | 8, false) => 6.0,
                (17 | 18, false) => 3.0,
                (_, true) => 0.5,
                _ => 0.35,
            },
            Profile::Leisure => {
                let hours = if (10..=20).contains(&h) { 1.5 } else { 0.1 };
                hours * if leisure { 2.4 } else { 1.0 }
            }
            Profile::Invalid => match h {
                22 | 23 | 0..=3 => 1.4,
                _ => 1.0,
            },
        }
    }
}

/// Where an incident of a subtype happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Where {
    /// In a residential compound, weighted by households.
    Home,
    /// In a compound, with the burglary hot spots (上海康城 …) weighted up.
    HomeBurglary,
    /// In a compound, with the "most gullible" compounds (爱博二村 …) weighted up; some students
    /// near the 吴泾 vocational college.
    HomeFraud,
    /// On a road or at a junction.
    Street,
    /// In a shop, restaurant or office on a road.
    Venue,
    /// On public transport or at a hub, market or mall.
    Transit,
    /// At 七宝老街.
    Tourist,
    /// Around 吴中路 / 老外街 / 万象城 in 虹桥镇.
    Nightlife,
    /// Home or street, evenly.
    Anywhere,
}

/// One subtype's place in the mix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubtypeSpec {
    /// Taxonomy code.
    pub(crate) code: &'static str,
    /// Relative frequency.
    pub(crate) weight: f64,
    /// Shape over the day.
    pub(crate) profile: Profile,
    /// Where it happens.
    pub(crate) place: Where,
    /// Relative affinity to the QR channel (0: never reported by QR).
    pub(crate) qr: f64,
}

const fn s(
    code: &'static str,
    weight: f64,
    profile: Profile,
    place: Where,
    qr: f64,
) -> SubtypeSpec {
    SubtypeSpec {
        code,
        weight,
        profile,
        place,
        qr,
    }
}

use Profile as P;
use Where as W;

/// The district mix. Weights are percent-like and sum to about 100.
pub(crate) const DISTRICT: &[SubtypeSpec] = &[
    // 刑事 ~5%
    s("CRIM_BURGLARY", 0.55, P::Day, W::HomeBurglary, 0.3),
    s("CRIM_PICKPOCKET", 0.6, P::Day, W::Transit, 0.0),
    s("CRIM_THEFT_FROM_VEHICLE", 0.4, P::Night, W::Street, 0.0),
    s("CRIM_CYCLE_THEFT", 1.2, P::Day, W::Home, 0.6),
    s("CRIM_THEFT_OTHER", 1.2, P::Day, W::Anywhere, 0.3),
    s("CRIM_ROBBERY", 0.2, P::Night, W::Street, 0.0),
    s("CRIM_ASSAULT", 0.4, P::Night, W::Anywhere, 0.0),
    s("CRIM_OTHER", 0.35, P::Flat, W::Anywhere, 0.0),
    // 诈骗 ~3.7%, MPS 2023 order by case count
    s("FRAUD_TASK", 1.15, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_INVEST", 0.55, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_FAKE_CS", 0.45, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_LOAN", 0.3, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_ROMANCE", 0.25, P::Evening, W::HomeFraud, 0.1),
    s("FRAUD_FAKE_GOV", 0.25, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_FAKE_ACQ", 0.2, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_SHOPPING", 0.2, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_CREDIT", 0.1, P::Day, W::HomeFraud, 0.1),
    s("FRAUD_GAME", 0.1, P::Evening, W::HomeFraud, 0.1),
    s("FRAUD_OTHER", 0.2, P::Day, W::Street, 0.0),
    // 治安 ~8%
    s("PUB_FIGHT", 2.2, P::Night, W::Anywhere, 0.0),
    s("PUB_DRUNK", 0.8, P::Night, W::Venue, 0.0),
    s("PUB_DISORDER", 1.0, P::Evening, W::Venue, 0.1),
    s("PUB_DOMESTIC_VIOLENCE", 1.0, P::Evening, W::Home, 0.05),
    s("PUB_VICE", 0.4, P::Night, W::Anywhere, 0.5),
    s("PUB_VANDALISM", 0.7, P::Night, W::Anywhere, 0.3),
    s("PUB_NOISE", 1.4, P::Night, W::Home, 1.0),
    // 纠纷 ~40% of all, about half of the valid incidents
    s("DSP_NEIGHBOUR", 8.0, P::Evening, W::Home, 1.0),
    s("DSP_FAMILY", 6.0, P::Evening, W::Home, 0.15),
    s("DSP_CONSUMER", 6.0, P::Day, W::Venue, 0.3),
    s("DSP_DEBT", 2.5, P::Day, W::Anywhere, 0.1),
    s("DSP_LABOUR", 3.0, P::Business, W::Venue, 0.3),
    s("DSP_TENANCY", 3.0, P::Evening, W::Home, 0.8),
    s("DSP_PROPERTY_MGMT", 3.5, P::Day, W::Home, 1.2),
    s("DSP_TRAFFIC", 6.0, P::Day, W::Street, 0.0),
    s("DSP_TOURIST", 0.9, P::Leisure, W::Tourist, 0.0),
    s("DSP_OTHER", 1.2, P::Day, W::Anywhere, 0.2),
    // 交通 ~9%
    s("TRF_ACCIDENT", 3.0, P::Day, W::Street, 0.0),
    s("TRF_CONGESTION", 2.0, P::Commute, W::Street, 0.0),
    s("TRF_PARKING", 3.2, P::Evening, W::Anywhere, 0.3),
    s("TRF_DUI", 0.6, P::Night, W::Street, 0.0),
    // 火警及险情 ~2.5%
    s("HAZ_FIRE", 0.5, P::Flat, W::Anywhere, 0.1),
    s("HAZ_GAS", 0.3, P::Day, W::Home, 0.2),
    s("HAZ_UTILITY", 1.3, P::Flat, W::Home, 0.8),
    s("HAZ_FALLING_OBJECT", 0.4, P::Day, W::Home, 0.8),
    // 群众求助 ~7%
    s("HELP_MISSING_PERSON", 1.0, P::Day, W::Anywhere, 0.3),
    s("HELP_LOST_PROPERTY", 2.0, P::Day, W::Transit, 0.2),
    s("HELP_LOCKOUT", 1.5, P::Evening, W::Home, 0.4),
    s("HELP_MEDICAL", 1.2, P::Flat, W::Anywhere, 0.1),
    s("HELP_SUICIDE", 0.3, P::Night, W::Anywhere, 0.0),
    s("HELP_INTOXICATED", 0.4, P::Night, W::Street, 0.0),
    s("HELP_OTHER", 0.5, P::Flat, W::Anywhere, 0.3),
    // 举报投诉 ~1.5%
    s("RPT_TIP", 0.7, P::Day, W::Anywhere, 1.0),
    s("RPT_SUBLET", 0.6, P::Day, W::Home, 2.0),
    s("RPT_POLICE_COMPLAINT", 0.2, P::Business, W::Anywhere, 0.2),
    // 非警务 ~4%
    s("NONP_STREET_VENDING", 0.8, P::Evening, W::Street, 0.6),
    s("NONP_ILLEGAL_BUILD", 0.5, P::Business, W::Home, 2.0),
    s("NONP_CONSTRUCTION_NOISE", 1.0, P::Evening, W::Home, 1.0),
    s("NONP_CONSULT", 1.2, P::Business, W::Anywhere, 0.6),
    s("NONP_ANIMAL", 0.5, P::Day, W::Home, 0.5),
    // 其他及无效 ~20%; OTH_DUPLICATE comes from the repeat-caller model, not from this table
    s("OTH_INVALID", 18.0, P::Invalid, W::Anywhere, 0.0),
    s("OTH_UNCLASSIFIED", 1.5, P::Flat, W::Anywhere, 0.1),
];

/// The 虹桥 nightlife stream: alcohol incidents (about a third, DOMAIN §2.2: nearly 10% of the
/// town's night calls are alcohol-related), bar noise, dine-and-dash, taxi disputes.
pub(crate) const NIGHTLIFE: &[SubtypeSpec] = &[
    s("PUB_DRUNK", 3.0, P::Flat, W::Nightlife, 0.0),
    s("PUB_FIGHT", 2.0, P::Flat, W::Nightlife, 0.0),
    s("HELP_INTOXICATED", 1.4, P::Flat, W::Nightlife, 0.0),
    s("TRF_DUI", 0.8, P::Flat, W::Nightlife, 0.0),
    s("PUB_NOISE", 2.0, P::Flat, W::Nightlife, 0.0),
    s("DSP_CONSUMER", 2.0, P::Flat, W::Nightlife, 0.0),
    s("CRIM_PICKPOCKET", 0.6, P::Flat, W::Nightlife, 0.0),
    s("HELP_LOST_PROPERTY", 0.8, P::Flat, W::Nightlife, 0.0),
    s("CRIM_ASSAULT", 0.3, P::Flat, W::Nightlife, 0.0),
    s("DSP_OTHER", 0.6, P::Flat, W::Nightlife, 0.0),
    s("TRF_PARKING", 0.5, P::Flat, W::Nightlife, 0.0),
];

/// The share of all events that arrive as QR doorplate reports.
pub(crate) const QR_SHARE: f64 = 0.15;

/// The district mix with the QR probability per subtype solved so the overall QR share is
/// [`QR_SHARE`].
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    qr_scale: f64,
}

impl Mix {
    pub(crate) fn new() -> Mix {
        // P(qr | s) = min(0.95, k · affinity); find k by bisection so Σ w·P = share · Σ w.
        let total: f64 = DISTRICT.iter().map(|x| x.weight).sum();
        let share = |k: f64| {
            DISTRICT
                .iter()
                .map(|x| x.weight * (k * x.qr).min(0.95))
                .sum::<f64>()
                / total
        };
        let (mut lo, mut hi) = (0.0, 10.0);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if share(mid) < QR_SHARE {
                lo = mid
            } else {
                hi = mid
            }
        }
        Mix { qr_scale: hi }
    }

    /// Probability that an event of `spec` arrives as a QR report.
    pub(crate) fn qr_probability(&self, spec: &SubtypeSpec) -> f64 {
        (self.qr_scale * spec.qr).min(0.95)
    }

    /// The district weights at local time `t`, in [`DISTRICT`] order.
    pub(crate) fn weights_at(&self, t: &DateTime<FixedOffset>) -> Vec<f64> {
        DISTRICT
            .iter()
            .map(|x| x.weight * x.profile.factor(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingan_domain::taxonomy::Taxonomy;

    #[test]
    fn every_code_is_in_the_taxonomy() {
        let tax = Taxonomy::builtin();
        for x in DISTRICT.iter().chain(NIGHTLIFE) {
            assert!(tax.subtype(x.code).is_some(), "{} is not a subtype", x.code);
        }
    }

    #[test]
    fn disputes_are_about_half_of_the_valid_incidents() {
        let total: f64 = DISTRICT.iter().map(|x| x.weight).sum();
        let dsp: f64 = DISTRICT
            .iter()
            .filter(|x| x.code.starts_with("DSP_"))
            .map(|x| x.weight)
            .sum();
        let oth: f64 = DISTRICT
            .iter()
            .filter(|x| x.code.starts_with("OTH_"))
            .map(|x| x.weight)
            .sum();
        let share = dsp / (total - oth);
        assert!((0.45..0.55).contains(&share), "{share}");
    }

    #[test]
    fn the_qr_share_is_solved() {
        let m = Mix::new();
        let total: f64 = DISTRICT.iter().map(|x| x.weight).sum();
        let got: f64 = DISTRICT
            .iter()
            .map(|x| x.weight * m.qr_probability(x))
            .sum::<f64>()
            / total;
        assert!((got - QR_SHARE).abs() < 0.001, "{got}");
    }
}
