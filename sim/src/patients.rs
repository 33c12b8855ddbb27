//! The simulated catchment population: who the patients are.
//!
//! Each trust serves a population of numbered people; everything about person `i` (NHS
//! number, name, date of birth, sex, address) is a pure function of the seed, the trust and
//! `i`, so nothing is stored and the same person looks the same in every feed. NHS numbers are
//! valid (modulus 11) and, for the first half million people, in the 999 range reserved for
//! testing. Only the feeds in their real formats carry these identifiers; the lake gets the
//! keyed `patient_key`.

use chrono::{Duration, NaiveDate};

/// A person in a trust's catchment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatientId {
    /// Trust index.
    pub trust: u32,
    /// Person within the trust's population.
    pub index: u32,
}

/// Demographics of one person, as a PAS would send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Ten-digit NHS number with a valid check digit.
    pub nhs_number: String,
    /// The trust's local hospital number.
    pub local_id: String,
    pub family_name: &'static str,
    pub given_name: &'static str,
    /// `M` or `F`.
    pub sex: char,
    pub date_of_birth: NaiveDate,
    pub address: String,
    pub postcode: String,
}

/// SplitMix64: a fast, well-mixed hash for deriving per-person attributes.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Population of one trust.
#[derive(Debug, Clone)]
pub struct Population {
    seed: u64,
    trust: u32,
    size: u32,
    /// Index of the first person of this trust among all simulated people.
    global_offset: u64,
}

const FAMILY: [&str; 40] = [
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin",
    "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison",
    "Morgan", "Allen",
];
const GIVEN_F: [&str; 20] = [
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophia", "Lily", "Emily", "Freya",
    "Margaret", "Susan", "Patricia", "Joan", "Sarah", "Helen", "Karen", "Aisha", "Zara", "Ruth",
];
const GIVEN_M: [&str; 20] = [
    "Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Jack", "Charlie", "Oscar", "Jacob",
    "John", "David", "Michael", "Peter", "Paul", "James", "Robert", "Mohammed", "Ali", "Thomas",
];
const STREETS: [&str; 12] = [
    "High Street",
    "Church Road",
    "Station Road",
    "Park Avenue",
    "Victoria Road",
    "Green Lane",
    "Manor Road",
    "Mill Lane",
    "School Lane",
    "Queens Road",
    "New Road",
    "Grange Road",
];

/// Share of the population in each age band (roughly England's pyramid), and how much more
/// often people of that age come to hospital than the average.
const AGE_BANDS: [(u32, u32, f64, f64); 8] = [
    (0, 4, 0.055, 1.3),
    (5, 15, 0.13, 0.7),
    (16, 24, 0.11, 0.9),
    (25, 44, 0.26, 0.8),
    (45, 64, 0.25, 0.9),
    (65, 74, 0.10, 1.4),
    (75, 84, 0.068, 2.2),
    (85, 100, 0.027, 3.2),
];

impl Population {
    /// The population of trust `trust` (of `size` people); `global_offset` keeps NHS numbers
    /// distinct across trusts.
    pub fn new(seed: u64, trust: u32, size: u32, global_offset: u64) -> Self {
        Population {
            seed,
            trust,
            size,
            global_offset,
        }
    }

    /// The trust this population belongs to.
    pub fn trust(&self) -> u32 {
        self.trust
    }

    /// Number of people.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn hash(&self, index: u32, salt: u64) -> u64 {
        mix(self.seed ^ mix(u64::from(self.trust) << 32 | u64::from(index)) ^ mix(salt))
    }

    /// Age in whole years on `on`.
    pub fn age(&self, id: PatientId, on: NaiveDate) -> u32 {
        let dob = self.date_of_birth(id.index);
        let years = on.years_since(dob).unwrap_or(0);
        years.min(110)
    }

    /// How much more often than average this person uses hospital services.
    pub fn attendance_weight(&self, index: u32) -> f64 {
        let band = self.band(index);
        AGE_BANDS[band].3
    }

    fn band(&self, index: u32) -> usize {
        let u = (self.hash(index, 1) >> 11) as f64 / (1u64 << 53) as f64;
        let mut acc = 0.0;
        for (i, band) in AGE_BANDS.iter().enumerate() {
            acc += band.2;
            if u < acc {
                return i;
            }
        }
        AGE_BANDS.len() - 1
    }

    fn date_of_birth(&self, index: u32) -> NaiveDate {
        let (lo, hi, _, _) = AGE_BANDS[self.band(index)];
        let span_days = u64::from(hi - lo + 1) * 365;
        let days = u64::from(lo) * 365 + self.hash(index, 2) % span_days;
        // Ages are measured from a fixed reference so a person's birthday never depends on
        // the simulation's dates.
        let reference = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
        reference - Duration::days(i64::try_from(days).unwrap_or(0))
    }

    /// Everything a PAS knows about person `index`.
    pub fn person(&self, index: u32) -> Person {
        let h = self.hash(index, 3);
        let sex = if h & 1 == 0 { 'F' } else { 'M' };
        let given = if sex == 'F' {
            GIVEN_F[(h >> 8) as usize % GIVEN_F.len()]
        } else {
            GIVEN_M[(h >> 8) as usize % GIVEN_M.len()]
        };
        let family = FAMILY[(h >> 16) as usize % FAMILY.len()];
        let house = 1 + (h >> 24) % 180;
        let street = STREETS[(h >> 32) as usize % STREETS.len()];
        // "XY" is not a real postcode area, so no synthetic address can be mistaken for one.
        let postcode = format!(
            "XY{} {}{}{}",
            1 + (h >> 40) % 20,
            (h >> 45) % 10,
            char::from(b'A' + ((h >> 49) % 26) as u8),
            char::from(b'A' + ((h >> 54) % 26) as u8)
        );
        Person {
            nhs_number: nhs_number(self.global_offset + u64::from(index)),
            local_id: format!("RX{:08}", index),
            family_name: family,
            given_name: given,
            sex,
            date_of_birth: self.date_of_birth(index),
            address: format!("{house} {street}"),
            postcode,
        }
    }

    /// The NHS number of person `index`, without building the rest of the record.
    pub fn nhs_number(&self, index: u32) -> String {
        nhs_number(self.global_offset + u64::from(index))
    }
}

/// The modulus-11 check digit of a nine-digit NHS number stem, or `None` when no valid check
/// digit exists (the remainder gives 10).
pub fn check_digit(stem: u64) -> Option<u64> {
    let mut digits = [0u64; 9];
    let mut n = stem;
    for d in digits.iter_mut().rev() {
        *d = n % 10;
        n /= 10;
    }
    let sum: u64 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| d * (10 - i as u64))
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

/// A valid NHS number for global person `g`.
///
/// Stems step by two, so when a stem has no valid check digit the next stem (which belongs to
/// nobody) does: consecutive stems' weighted sums differ by 2, or by 7 across a carry, never by
/// a multiple of 11, so both cannot be invalid.
fn nhs_number(g: u64) -> String {
    const TEST_RANGE: u64 = 500_000;
    let stem = if g < TEST_RANGE {
        999_000_000 + 2 * g
    } else {
        900_000_000 + 2 * ((g - TEST_RANGE) % 45_000_000)
    };
    let (stem, check) = match check_digit(stem) {
        Some(c) => (stem, c),
        None => (stem + 1, check_digit(stem + 1).unwrap_or(0)),
    };
    format!("{stem:09}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_nhs_number() {
        // 943 476 5919 is the NHS Data Dictionary's worked example of a valid number.
        assert_eq!(check_digit(943_476_591), Some(9));
    }

    #[test]
    fn every_generated_number_is_valid_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for g in (0..200_000u64).chain(500_000..520_000) {
            let n = nhs_number(g);
            assert_eq!(n.len(), 10);
            let stem: u64 = n[..9].parse().unwrap();
            let check: u64 = n[9..].parse().unwrap();
            assert_eq!(check_digit(stem), Some(check), "{n}");
            assert!(seen.insert(n));
        }
        assert!(nhs_number(0).starts_with("999"));
    }

    #[test]
    fn people_are_stable_and_ages_follow_the_pyramid() {
        let p = Population::new(7, 0, 10_000, 0);
        assert_eq!(p.person(42), p.person(42));
        let on = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let over_85 = (0..10_000)
            .filter(|&i| p.age(PatientId { trust: 0, index: i }, on) >= 85)
            .count();
        // 2.7% expected; allow sampling noise.
        assert!((150..400).contains(&over_85), "{over_85}");
    }
}
