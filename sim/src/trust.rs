//! The shape of a simulated acute trust: sites, wards and beds, theatres and their weekly
//! timetable, and the procedures each specialty performs.
//!
//! The reference trust (index 0, size 1.0) has 3 sites, 40 wards with about 900 beds, an
//! emergency department at its main site and 20 theatres. Other trusts of a national run are
//! the same design scaled between 0.5 and 1.6 (fewer or more wards and theatres, smaller or
//! larger population and ED).

use crate::patients::{Population, mix};

/// Specialty (treatment function) codes used by the simulator.
pub mod specialty {
    pub const GENERAL_SURGERY: &str = "100";
    pub const UROLOGY: &str = "101";
    pub const TRAUMA_ORTHO: &str = "110";
    pub const ENT: &str = "120";
    pub const OPHTHALMOLOGY: &str = "130";
    pub const CRITICAL_CARE: &str = "192";
    pub const GENERAL_MEDICINE: &str = "300";
    pub const GASTRO: &str = "301";
    pub const REHAB: &str = "314";
    pub const CARDIOLOGY: &str = "320";
    pub const STROKE: &str = "328";
    pub const RESPIRATORY: &str = "340";
    pub const PAEDIATRICS: &str = "420";
    pub const GERIATRICS: &str = "430";
    pub const OBSTETRICS: &str = "501";
    pub const GYNAECOLOGY: &str = "502";
}

/// What a ward is for; decides which patients it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WardRole {
    /// Acute medical unit: medical emergencies for their first day or two.
    MedicalAssessment,
    /// Surgical assessment unit.
    SurgicalAssessment,
    /// A specialty's base ward.
    Base,
    /// Intensive care.
    Critical,
    Maternity,
    Paediatric,
    /// Same-day surgery: patients leave the same day.
    DayCase,
}

impl WardRole {
    /// The `ward_type` written to the `beds` table.
    pub fn ward_type(self) -> &'static str {
        match self {
            WardRole::Critical => "critical_care",
            WardRole::Maternity => "maternity",
            WardRole::Paediatric => "paediatric",
            WardRole::DayCase => "day_case",
            _ => "general_acute",
        }
    }
}

/// One ward.
#[derive(Debug, Clone)]
pub struct Ward {
    pub code: String,
    pub site: usize,
    pub role: WardRole,
    pub specialty: &'static str,
    pub beds: u32,
}

impl Ward {
    /// Whether the ward opens escalation beds in winter: the acute medical unit and the
    /// medical base wards, where winter's extra emergency admissions land.
    pub fn escalates(&self) -> bool {
        use specialty::*;
        match self.role {
            WardRole::MedicalAssessment => true,
            WardRole::Base => [
                GENERAL_MEDICINE,
                GERIATRICS,
                RESPIRATORY,
                CARDIOLOGY,
                GASTRO,
                STROKE,
            ]
            .contains(&self.specialty),
            _ => false,
        }
    }
}

/// One hospital site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Short site code used in every table's `site` column.
    pub code: String,
    pub name: String,
    pub has_ed: bool,
}

/// A procedure a theatre list can book.
#[derive(Debug, Clone, Copy)]
pub struct Procedure {
    /// OPCS-4 code.
    pub code: &'static str,
    pub name: &'static str,
    /// Typical minutes from knife to skin to the end of surgery.
    pub minutes: u32,
}

/// Which lists a theatre runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TheatreUse {
    /// Weekday elective lists for the specialties of the timetable.
    Elective,
    /// The emergency (CEPOD) theatre: one long list every day.
    Emergency,
}

/// One operating theatre.
#[derive(Debug, Clone)]
pub struct Theatre {
    pub code: String,
    pub site: usize,
    pub usage: TheatreUse,
    /// Specialty per weekday (Mon–Fri) for elective theatres.
    pub timetable: [&'static str; 5],
    /// Whether weekday lists are all-day (08:30–17:30) rather than AM/PM halves.
    pub all_day: bool,
}

/// A simulated trust.
#[derive(Debug, Clone)]
pub struct TrustModel {
    pub index: u32,
    /// ODS-style trust code, e.g. `X01`.
    pub org_code: String,
    pub name: String,
    /// Relative size (1.0 = the reference trust).
    pub scale: f64,
    /// Patient demand relative to the reference trust: its general and acute bed base's share
    /// of the reference trust's (whole wards round the bed base, so demand follows the beds
    /// actually built), times a local pressure of ±8% that spreads trusts' performance.
    pub demand: f64,
    pub sites: Vec<Site>,
    pub wards: Vec<Ward>,
    pub theatres: Vec<Theatre>,
    /// Site with the emergency department.
    pub ed_site: usize,
    /// People in the catchment.
    pub population: u32,
}

const SITE_NAMES: [(&str, &str); 9] = [
    ("NGH", "Northgate General Hospital"),
    ("RVH", "Riverside Hospital"),
    ("SAC", "St Anne's Elective Centre"),
    ("WMH", "Westmoor Hospital"),
    ("BCH", "Bridgecross Hospital"),
    ("HTC", "Hilltop Treatment Centre"),
    ("LVH", "Lakeview Hospital"),
    ("OKH", "Oakham Royal Hospital"),
    ("MSC", "Marsh Surgical Centre"),
];

const TOWNS: [&str; 12] = [
    "Northgate",
    "Riverside",
    "Westmoor",
    "Bridgecross",
    "Lakeview",
    "Oakham",
    "Marshfield",
    "Hillbury",
    "Ashford Vale",
    "Kingsmere",
    "Stonebridge",
    "Fairhaven",
];

/// Procedures by specialty: (specialty, OPCS-4 code, name, typical surgical minutes).
const PROCEDURES: &[(&str, Procedure)] = &[
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "J18.3",
            name: "Laparoscopic cholecystectomy",
            minutes: 75,
        },
    ),
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "T20.2",
            name: "Inguinal hernia repair (mesh)",
            minutes: 50,
        },
    ),
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "H07.9",
            name: "Right hemicolectomy",
            minutes: 170,
        },
    ),
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "H51.1",
            name: "Haemorrhoidectomy",
            minutes: 35,
        },
    ),
    (
        specialty::UROLOGY,
        Procedure {
            code: "M65.3",
            name: "Transurethral resection of prostate",
            minutes: 65,
        },
    ),
    (
        specialty::UROLOGY,
        Procedure {
            code: "M42.1",
            name: "Transurethral resection of bladder tumour",
            minutes: 45,
        },
    ),
    (
        specialty::UROLOGY,
        Procedure {
            code: "M45.9",
            name: "Diagnostic cystoscopy",
            minutes: 20,
        },
    ),
    (
        specialty::TRAUMA_ORTHO,
        Procedure {
            code: "W37.1",
            name: "Total hip replacement (cemented)",
            minutes: 105,
        },
    ),
    (
        specialty::TRAUMA_ORTHO,
        Procedure {
            code: "W40.1",
            name: "Total knee replacement (cemented)",
            minutes: 100,
        },
    ),
    (
        specialty::TRAUMA_ORTHO,
        Procedure {
            code: "A65.1",
            name: "Carpal tunnel release",
            minutes: 20,
        },
    ),
    (
        specialty::TRAUMA_ORTHO,
        Procedure {
            code: "T52.1",
            name: "Palmar fasciectomy",
            minutes: 60,
        },
    ),
    (
        specialty::GYNAECOLOGY,
        Procedure {
            code: "Q07.4",
            name: "Total abdominal hysterectomy",
            minutes: 110,
        },
    ),
    (
        specialty::GYNAECOLOGY,
        Procedure {
            code: "Q18.9",
            name: "Diagnostic hysteroscopy",
            minutes: 20,
        },
    ),
    (
        specialty::GYNAECOLOGY,
        Procedure {
            code: "Q22.1",
            name: "Bilateral salpingo-oophorectomy",
            minutes: 80,
        },
    ),
    (
        specialty::ENT,
        Procedure {
            code: "F34.4",
            name: "Tonsillectomy",
            minutes: 35,
        },
    ),
    (
        specialty::ENT,
        Procedure {
            code: "E03.6",
            name: "Septoplasty",
            minutes: 55,
        },
    ),
    (
        specialty::ENT,
        Procedure {
            code: "D15.1",
            name: "Insertion of grommets",
            minutes: 15,
        },
    ),
    (
        specialty::OPHTHALMOLOGY,
        Procedure {
            code: "C71.2",
            name: "Phacoemulsification of lens (cataract)",
            minutes: 22,
        },
    ),
    (
        specialty::OPHTHALMOLOGY,
        Procedure {
            code: "C79.9",
            name: "Vitrectomy",
            minutes: 70,
        },
    ),
    (
        specialty::OBSTETRICS,
        Procedure {
            code: "R17.2",
            name: "Elective caesarean section",
            minutes: 45,
        },
    ),
];

/// Procedures on the emergency list.
const EMERGENCY_PROCEDURES: &[(&str, Procedure)] = &[
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "H01.9",
            name: "Emergency appendicectomy",
            minutes: 55,
        },
    ),
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "T30.9",
            name: "Emergency laparotomy",
            minutes: 140,
        },
    ),
    (
        specialty::TRAUMA_ORTHO,
        Procedure {
            code: "W46.1",
            name: "Hemiarthroplasty of hip (fractured neck of femur)",
            minutes: 80,
        },
    ),
    (
        specialty::GENERAL_SURGERY,
        Procedure {
            code: "S57.1",
            name: "Debridement of wound",
            minutes: 35,
        },
    ),
    (
        specialty::OBSTETRICS,
        Procedure {
            code: "R18.2",
            name: "Emergency caesarean section",
            minutes: 45,
        },
    ),
];

impl TrustModel {
    /// Builds trust `index` of a run with `seed`. Trust 0 is always the reference size.
    pub fn build(seed: u64, index: u32) -> Self {
        let h = mix(seed ^ 0x7275_7374 ^ u64::from(index));
        let scale = if index == 0 {
            1.0
        } else {
            0.5 + (h % 1100) as f64 / 1000.0
        };
        let org_code = org_code(index);
        let town = TOWNS[(h >> 20) as usize % TOWNS.len()];
        let name = if index == 0 {
            "Northgate and Riverside University Hospitals NHS Foundation Trust".to_string()
        } else {
            format!("{town} Hospitals NHS Trust (simulated {org_code})")
        };
        let first_site = (index as usize * 3) % SITE_NAMES.len();
        let sites: Vec<Site> = (0..3)
            .map(|i| {
                let (code, name) = SITE_NAMES[(first_site + i) % SITE_NAMES.len()];
                Site {
                    code: code.to_string(),
                    name: name.to_string(),
                    has_ed: i == 0,
                }
            })
            .collect();
        let wards = build_wards(scale);
        let pressure = if index == 0 {
            1.0
        } else {
            0.92 + ((h >> 36) % 161) as f64 / 1000.0
        };
        let demand = f64::from(general_acute_beds(&wards))
            / f64::from(general_acute_beds(&build_wards(1.0)))
            * pressure;
        let theatres = build_theatres(scale, h);
        let population = (320_000.0 * scale) as u32;
        TrustModel {
            index,
            org_code,
            name,
            scale,
            demand,
            sites,
            wards,
            theatres,
            ed_site: 0,
            population,
        }
    }

    /// The trust's catchment population; NHS numbers stay distinct across trusts.
    pub fn population_of(&self, seed: u64) -> Population {
        Population::new(
            seed,
            self.index,
            self.population,
            u64::from(self.index) * 400_000,
        )
    }

    /// Total beds over all wards.
    pub fn total_beds(&self) -> u32 {
        self.wards.iter().map(|w| w.beds).sum()
    }

    /// Wards of a role (and specialty, if given) at any site, by index.
    pub fn wards_where(&self, role: WardRole, specialty: Option<&str>) -> Vec<usize> {
        self.wards
            .iter()
            .enumerate()
            .filter(|(_, w)| w.role == role && specialty.is_none_or(|s| w.specialty == s))
            .map(|(i, _)| i)
            .collect()
    }

    /// Procedures a specialty books on elective lists.
    pub fn procedures(specialty: &str) -> impl Iterator<Item = &'static Procedure> + '_ {
        PROCEDURES
            .iter()
            .filter(move |(s, _)| *s == specialty)
            .map(|(_, p)| p)
    }

    /// Procedures on the emergency list, with their specialty.
    pub fn emergency_procedures() -> &'static [(&'static str, Procedure)] {
        EMERGENCY_PROCEDURES
    }
}

/// ODS-style trust code: `X` and two base-36 digits (`X01` … `XZZ`). No real trust code starts
/// with `X`, so simulated data can never pass for a real trust's.
pub fn org_code(index: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let n = index as usize + 1;
    format!(
        "X{}{}",
        char::from(DIGITS[(n / 36) % 36]),
        char::from(DIGITS[n % 36])
    )
}

fn general_acute_beds(wards: &[Ward]) -> u32 {
    wards
        .iter()
        .filter(|w| w.role.ward_type() == "general_acute")
        .map(|w| w.beds)
        .sum()
}

fn build_wards(scale: f64) -> Vec<Ward> {
    use WardRole::*;
    use specialty::*;
    // (site, role, specialty, count at scale 1, beds each, name stem)
    let plan: &[(usize, WardRole, &str, u32, u32, &str)] = &[
        (0, MedicalAssessment, GENERAL_MEDICINE, 1, 40, "AMU"),
        (0, SurgicalAssessment, GENERAL_SURGERY, 1, 22, "SAU"),
        (0, Critical, CRITICAL_CARE, 1, 16, "ICU"),
        (0, Base, CARDIOLOGY, 1, 18, "CCU"),
        (0, Base, GENERAL_MEDICINE, 3, 26, "Ward 1"),
        (0, Base, GERIATRICS, 2, 26, "Ward 2"),
        (0, Base, RESPIRATORY, 2, 26, "Ward 3"),
        (0, Base, GASTRO, 1, 24, "Ward 4"),
        (0, Base, STROKE, 1, 22, "Stroke"),
        (0, Base, GENERAL_SURGERY, 2, 24, "Ward 5"),
        (0, Base, TRAUMA_ORTHO, 1, 26, "Ward 6"),
        (0, Base, UROLOGY, 1, 20, "Ward 7"),
        (0, Paediatric, PAEDIATRICS, 1, 22, "Paeds"),
        (0, Maternity, OBSTETRICS, 2, 26, "Maternity"),
        (0, Base, GYNAECOLOGY, 1, 16, "Gynae"),
        (0, DayCase, GENERAL_SURGERY, 1, 16, "DSU"),
        (1, Base, GENERAL_MEDICINE, 2, 24, "Ward 11"),
        (1, Base, GERIATRICS, 2, 24, "Ward 12"),
        (1, Base, RESPIRATORY, 1, 24, "Ward 13"),
        (1, Base, CARDIOLOGY, 1, 22, "Ward 14"),
        (1, Base, GENERAL_SURGERY, 1, 22, "Ward 15"),
        (1, Base, TRAUMA_ORTHO, 1, 22, "Ward 16"),
        (1, Base, REHAB, 2, 20, "Rehab"),
        (2, Base, TRAUMA_ORTHO, 2, 20, "Elective Ortho"),
        (2, Base, GENERAL_SURGERY, 1, 18, "Elective Surgery"),
        (2, Base, UROLOGY, 1, 14, "Elective Urology"),
        (2, DayCase, OPHTHALMOLOGY, 1, 14, "Day Unit"),
        (2, Base, REHAB, 1, 20, "Community Rehab"),
    ];
    let mut wards = Vec::new();
    for &(site, role, specialty, count, beds, stem) in plan {
        // Small trusts keep one of everything; big ones add wards, never beds per ward.
        let n = ((f64::from(count) * scale).round() as u32).max(1);
        for i in 0..n {
            let code = if n == 1 && count == 1 {
                stem.to_string()
            } else {
                format!("{stem}{}", char::from(b'A' + (i % 26) as u8))
            };
            wards.push(Ward {
                code,
                site,
                role,
                specialty,
                beds,
            });
        }
    }
    wards
}

fn build_theatres(scale: f64, h: u64) -> Vec<Theatre> {
    use specialty::*;
    // (site, count at scale 1, weekday specialties to rotate through)
    let plan: &[(usize, u32, &[&str])] = &[
        (
            0,
            7,
            &[GENERAL_SURGERY, UROLOGY, TRAUMA_ORTHO, GYNAECOLOGY, ENT],
        ),
        (0, 1, &[OBSTETRICS]),
        (
            2,
            6,
            &[TRAUMA_ORTHO, TRAUMA_ORTHO, GENERAL_SURGERY, UROLOGY],
        ),
        (1, 4, &[OPHTHALMOLOGY, GENERAL_SURGERY, ENT]),
    ];
    let mut theatres = Vec::new();
    let mut number = 1;
    for &(site, count, rotation) in plan {
        let n = ((f64::from(count) * scale).round() as u32).max(1);
        for i in 0..n {
            let mut timetable = [rotation[0]; 5];
            for (day, slot) in timetable.iter_mut().enumerate() {
                let k = (i as usize + day + (h >> 8) as usize) % rotation.len();
                *slot = rotation[k];
            }
            theatres.push(Theatre {
                code: format!("T{number:02}"),
                site,
                usage: TheatreUse::Elective,
                timetable,
                // Orthopaedic and major lists run all day; others split AM/PM.
                all_day: rotation[0] == TRAUMA_ORTHO || (i + (h >> 16) as u32).is_multiple_of(3),
            });
            number += 1;
        }
    }
    theatres.push(Theatre {
        code: format!("T{number:02}"),
        site: 0,
        usage: TheatreUse::Emergency,
        timetable: [GENERAL_SURGERY; 5],
        all_day: true,
    });
    theatres
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_trust_has_the_stated_shape() {
        let t = TrustModel::build(1, 0);
        assert_eq!(t.sites.len(), 3);
        assert!(
            (38..=44).contains(&t.wards.len()),
            "{} wards",
            t.wards.len()
        );
        let beds = t.total_beds();
        assert!((850..=980).contains(&beds), "{beds} beds");
        assert_eq!(t.theatres.len(), 19);
        let mut codes: Vec<_> = t.wards.iter().map(|w| w.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), t.wards.len(), "ward codes are unique");
    }

    #[test]
    fn org_codes_are_unique_for_a_national_run() {
        let codes: std::collections::BTreeSet<_> = (0..150).map(org_code).collect();
        assert_eq!(codes.len(), 150);
        assert_eq!(org_code(0), "X01");
    }
}
