//! Rosters and the ledger: every ward's nursing and care shifts, medical and therapy rotas,
//! who filled them (substantive, bank, agency, or nobody), and the monthly finance lines that
//! follow from them.
//!
//! Winter raises vacancy cover, so bank and agency use peak then; agency hours cost about
//! twice substantive hours, which is what drives pay overspends in the ledger.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::clock::Clock;
use crate::records::{FinanceRecord, Record, ShiftRecord};
use crate::trust::{TrustModel, WardRole};
use crate::{rng_stream, winter};

/// Hourly cost in pence by staff group and contract.
fn rate_pence(group: &str, contract: &str) -> i128 {
    let base = match group {
        "nursing" => 2_900,
        "hca" => 1_750,
        "medical" => 6_200,
        _ => 2_700,
    };
    match contract {
        "bank" => base * 108 / 100,
        "agency" => base * 195 / 100,
        _ => base,
    }
}

#[derive(Debug, Default, Clone)]
struct Ledger {
    site: usize,
    specialty: Option<&'static str>,
    pay_budget: i128,
    pay_actual: i128,
    non_pay_budget: i128,
    non_pay_actual: i128,
    income_budget: i128,
    income_actual: i128,
}

/// Roster and ledger state of one trust.
pub(crate) struct Workforce {
    rng: ChaCha8Rng,
    next_shift: u64,
    month: BTreeMap<String, Ledger>,
    /// Whether the month being accumulated started on its first day; a partial first month
    /// is not reported, as a ledger never holds part of a month.
    whole_month: Option<bool>,
}

impl Workforce {
    pub(crate) fn new(model: &TrustModel, seed: u64) -> Self {
        Workforce {
            rng: rng_stream(seed, model, 0x776f),
            next_shift: 1,
            month: BTreeMap::new(),
            whole_month: None,
        }
    }

    pub(crate) fn run_day(
        &mut self,
        model: &TrustModel,
        clock: &Clock,
        day: i64,
        out: &mut dyn FnMut(Record),
    ) {
        let date = clock.date(day);
        if self.whole_month.is_none() {
            self.whole_month = Some(date.day() == 1);
        }
        let w = winter(date);
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        for ward in &model.wards {
            if ward.role == WardRole::DayCase && weekend {
                continue;
            }
            let beds = f64::from(ward.beds);
            let (rn_day, rn_night) = match ward.role {
                WardRole::Critical => (beds, beds),
                WardRole::DayCase => (beds / 5.0, 0.0),
                _ => (beds / 7.0, beds / 9.0),
            };
            let (hca_day, hca_night) = match ward.role {
                WardRole::Critical => (2.0, 1.0),
                WardRole::DayCase => (beds / 8.0, 0.0),
                _ => (beds / 10.0, beds / 14.0),
            };
            let centre = format!("{}-{}", model.sites[ward.site].code, ward.code);
            for (group, count) in [
                ("nursing", rn_day.ceil() + rn_night.ceil()),
                ("hca", hca_day.ceil() + hca_night.ceil()),
            ] {
                for _ in 0..count as u32 {
                    self.shift(
                        ward.site,
                        Some(&ward.code),
                        &centre,
                        ward.specialty,
                        group,
                        11.5,
                        w,
                        day,
                        out,
                    );
                }
            }
            if !matches!(ward.role, WardRole::DayCase | WardRole::Maternity) {
                for _ in 0..2 {
                    self.shift(
                        ward.site,
                        Some(&ward.code),
                        &centre,
                        ward.specialty,
                        "medical",
                        10.0,
                        w,
                        day,
                        out,
                    );
                }
            }
            let ledger = self.month.entry(centre).or_default();
            ledger.site = ward.site;
            ledger.specialty = Some(ward.specialty);
            // Consumables per bed-day, a little over budget in winter.
            ledger.non_pay_budget += i128::from(ward.beds) * 3_600;
            ledger.non_pay_actual += (f64::from(ward.beds)
                * 3_600.0
                * (0.97 + 0.08 * w + self.rng.random_range(0.0..0.06)))
                as i128;
        }
        let ed_centre = format!("{}-ED", model.sites[model.ed_site].code);
        let ed_scale = (model.scale * 10.0).round().max(4.0) as u32;
        for (group, n, hours) in [
            ("nursing", ed_scale * 3, 11.5),
            ("medical", ed_scale * 2, 10.0),
            ("hca", ed_scale, 11.5),
        ] {
            for _ in 0..n {
                self.shift(
                    model.ed_site,
                    Some("ED"),
                    &ed_centre,
                    "180",
                    group,
                    hours,
                    w,
                    day,
                    out,
                );
            }
        }
        if !weekend {
            for (site_index, site) in model.sites.iter().enumerate() {
                let centre = format!("{}-THERAPIES", site.code);
                for _ in 0..(6.0 * model.scale).ceil() as u32 {
                    self.shift(site_index, None, &centre, "650", "ahp", 7.5, w, day, out);
                }
            }
        }
        let next = clock.date(day + 1);
        if next.month() != date.month() {
            self.close_month(model, date, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shift(
        &mut self,
        site: usize,
        ward: Option<&str>,
        centre: &str,
        specialty: &'static str,
        group: &'static str,
        planned: f64,
        winter: f64,
        day: i64,
        out: &mut dyn FnMut(Record),
    ) {
        let r = &mut self.rng;
        let p_substantive = if group == "medical" { 0.9 } else { 0.86 } - 0.06 * winter;
        let u: f64 = r.random();
        let contract = if u < p_substantive {
            "substantive"
        } else {
            let v: f64 = r.random();
            if v < 0.6 {
                "bank"
            } else if v < 0.87 {
                "agency"
            } else {
                "unfilled"
            }
        };
        let (contract, worked) = if contract == "unfilled" {
            // An unfilled shift stays on the roster as substantive with no hours worked.
            ("substantive", 0.0)
        } else if r.random_bool(0.08) {
            (contract, planned + f64::from(r.random_range(1..=4u8)) * 0.5)
        } else {
            (contract, planned)
        };
        let ledger = self.month.entry(centre.to_string()).or_default();
        ledger.site = site;
        ledger.specialty = Some(specialty);
        ledger.pay_budget += (planned * 100.0) as i128 * rate_pence(group, "substantive") / 100;
        ledger.pay_actual += (worked * 100.0) as i128 * rate_pence(group, contract) / 100;
        out(Record::Shift(ShiftRecord {
            shift_id: self.next_shift,
            site,
            ward: ward.map(str::to_string),
            staff_group: group,
            day,
            planned_hours: planned,
            worked_hours: worked,
            contract,
        }));
        self.next_shift += 1;
    }

    fn close_month(
        &mut self,
        model: &TrustModel,
        last_day: NaiveDate,
        out: &mut dyn FnMut(Record),
    ) {
        let month = last_day.with_day(1).unwrap_or(last_day);
        let days = i128::from(last_day.day());
        // Income per specialty follows activity; a simple plan-versus-actual with noise.
        let mut specialties: Vec<(&'static str, usize)> =
            model.wards.iter().map(|w| (w.specialty, w.site)).collect();
        specialties.sort_unstable();
        specialties.dedup_by_key(|(s, _)| *s);
        for (specialty, site) in specialties {
            let ledger = self.month.entry(format!("INCOME-{specialty}")).or_default();
            ledger.site = site;
            ledger.specialty = Some(specialty);
            let plan = days * 2_400_000 * i128::from((model.scale * 100.0) as i64) / 100;
            ledger.income_budget += plan;
            ledger.income_actual += plan * i128::from(self.rng.random_range(92..108i64)) / 100;
        }
        let ledgers = std::mem::take(&mut self.month);
        if self.whole_month.replace(true) != Some(true) {
            return;
        }
        for (centre, ledger) in ledgers {
            for (category, budget, actual) in [
                ("pay", ledger.pay_budget, ledger.pay_actual),
                ("non_pay", ledger.non_pay_budget, ledger.non_pay_actual),
                ("income", ledger.income_budget, ledger.income_actual),
            ] {
                if budget == 0 && actual == 0 {
                    continue;
                }
                out(Record::Finance(FinanceRecord {
                    cost_centre: centre.clone(),
                    site: ledger.site,
                    specialty: ledger.specialty,
                    category,
                    month,
                    budget_pence: budget,
                    actual_pence: actual,
                }));
            }
        }
    }
}
