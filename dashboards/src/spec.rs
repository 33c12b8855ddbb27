//! Dashboards as code: each dashboard is a TOML file naming its KPIs in sections, its audience,
//! default grain and filters. The built-in ones (`dashboards/builtin/`, compiled in) serve each
//! audience: the board's Integrated Performance Report (`board`), the emergency department,
//! flow and beds, theatres, workforce, finance and data quality; a folder of a trust's own
//! files adds to them (a file with a built-in id replaces it).
//!
//! Files are checked against the KPI catalogue when loaded: an unknown KPI or filter is an
//! error naming the file and the line, so a typo fails `bright dashboards check` (and start-up)
//! instead of leaving a blank chart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bright_engine::kpi::{Catalogue, Grain};
use serde::Deserialize;

use crate::users::Role;

/// The id of the dashboard `/ipr` reports.
pub const BOARD: &str = "board";

const BUILTIN: [(&str, &str); 7] = [
    ("board.toml", include_str!("../builtin/board.toml")),
    ("ed.toml", include_str!("../builtin/ed.toml")),
    ("flow.toml", include_str!("../builtin/flow.toml")),
    ("theatres.toml", include_str!("../builtin/theatres.toml")),
    ("workforce.toml", include_str!("../builtin/workforce.toml")),
    ("finance.toml", include_str!("../builtin/finance.toml")),
    (
        "data_quality.toml",
        include_str!("../builtin/data_quality.toml"),
    ),
];

/// A dashboard file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (the parser's message has the line).
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// Breaks a rule; `line` where the offending text is found.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    audience: Vec<String>,
    grain: Grain,
    #[serde(default)]
    filters: Vec<String>,
    section: Vec<RawSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    title: String,
    kpis: Vec<String>,
}

/// A group of KPIs on a dashboard (a domain of the IPR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub kpis: Vec<String>,
}

/// One dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Its URL name: `/dashboards/{id}`.
    pub id: String,
    pub title: String,
    pub description: String,
    /// Roles that see it (admins see every dashboard).
    pub audience: BTreeSet<Role>,
    /// Periods its charts show unless the viewer picks another.
    pub grain: Grain,
    /// Breakdowns the viewer may filter by (each a breakdown of one of its KPIs at least).
    pub filters: Vec<String>,
    pub sections: Vec<Section>,
    /// Where it was loaded from.
    pub file: PathBuf,
}

impl Dashboard {
    /// Every KPI of the dashboard, in order.
    pub fn kpis(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .flat_map(|s| s.kpis.iter().map(String::as_str))
    }

    /// Whether a person with `role` sees it (`None`: an API client with the read scope).
    pub fn visible_to(&self, role: Option<Role>) -> bool {
        match role {
            None | Some(Role::Admin) => true,
            Some(role) => self.audience.contains(&role),
        }
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let at = text.find(needle)?;
    Some(text[..at].matches('\n').count() + 1)
}

/// Parses and checks one dashboard file against `catalogue`.
pub fn parse(file: &Path, text: &str, catalogue: &Catalogue) -> Result<Dashboard, SpecError> {
    let raw: RawDashboard = toml::from_str(text).map_err(|e| SpecError::Parse {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    let invalid = |needle: &str, message: String| SpecError::Invalid {
        file: file.to_path_buf(),
        line: line_of(text, needle),
        message,
    };
    let id_ok = !raw.id.is_empty()
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !id_ok {
        return Err(invalid(
            "id",
            format!("dashboard id '{}' must be snake_case", raw.id),
        ));
    }
    let mut audience = BTreeSet::new();
    for role in &raw.audience {
        let parsed = role
            .parse::<Role>()
            .map_err(|e| invalid(&format!("\"{role}\""), e.to_string()))?;
        audience.insert(parsed);
    }
    let mut seen = BTreeSet::new();
    for section in &raw.section {
        if section.kpis.is_empty() {
            return Err(invalid(
                &section.title,
                format!("section '{}' has no KPIs", section.title),
            ));
        }
        for id in &section.kpis {
            if catalogue.get(id).is_err() {
                return Err(invalid(
                    &format!("\"{id}\""),
                    format!("unknown KPI '{id}' (bright kpi list shows them)"),
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(invalid(
                    &format!("\"{id}\""),
                    format!("KPI '{id}' is on the dashboard twice"),
                ));
            }
        }
    }
    if raw.section.is_empty() {
        return Err(invalid("id", "a dashboard needs a [[section]]".into()));
    }
    for filter in &raw.filters {
        let known = seen.iter().any(|id| {
            catalogue
                .get(id)
                .is_ok_and(|k| k.breakdowns.iter().any(|b| b == filter))
        });
        if !known {
            return Err(invalid(
                &format!("\"{filter}\""),
                format!("unknown filter '{filter}': no KPI of this dashboard breaks down by it"),
            ));
        }
    }
    Ok(Dashboard {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        audience,
        grain: raw.grain,
        filters: raw.filters,
        sections: raw
            .section
            .into_iter()
            .map(|s| Section {
                title: s.title,
                kpis: s.kpis,
            })
            .collect(),
        file: file.to_path_buf(),
    })
}

/// The dashboards a service shows, in order: built-in first, then local ones by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dashboards {
    list: Vec<Dashboard>,
}

impl Dashboards {
    /// The built-in dashboards, plus the `.toml` files in `local` (if given), all checked
    /// against `catalogue`.
    pub fn load(catalogue: &Catalogue, local: Option<&Path>) -> Result<Dashboards, SpecError> {
        let mut list = Vec::new();
        for (name, text) in BUILTIN {
            list.push(parse(
                &Path::new("dashboards/builtin").join(name),
                text,
                catalogue,
            )?);
        }
        if let Some(dir) = local {
            let read = |source| SpecError::Read {
                file: dir.to_path_buf(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(read)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|source| SpecError::Read {
                    file: file.clone(),
                    source,
                })?;
                let dashboard = parse(&file, &text, catalogue)?;
                match list
                    .iter_mut()
                    .find(|d: &&mut Dashboard| d.id == dashboard.id)
                {
                    Some(existing) if existing.file.starts_with("dashboards/builtin") => {
                        *existing = dashboard
                    }
                    Some(existing) => {
                        return Err(SpecError::Invalid {
                            file: file.clone(),
                            line: line_of(&text, "id"),
                            message: format!(
                                "dashboard id '{}' is also used by {}",
                                dashboard.id,
                                existing.file.display()
                            ),
                        });
                    }
                    None => list.push(dashboard),
                }
            }
        }
        Ok(Dashboards { list })
    }

    pub fn all(&self) -> &[Dashboard] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Dashboard> {
        self.list.iter().find(|d| d.id == id)
    }

    /// The board's report (`/ipr`), if any dashboard is called `board`.
    pub fn board(&self) -> Option<&Dashboard> {
        self.get(BOARD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::embedded().expect("the catalogue loads")
    }

    #[test]
    fn the_built_in_dashboards_load_and_the_board_holds_every_kpi() {
        let catalogue = catalogue();
        let dashboards = Dashboards::load(&catalogue, None).expect("built-ins are valid");
        assert_eq!(dashboards.all().len(), 7);
        let board = dashboards.board().expect("a board");
        let on_board: BTreeSet<&str> = board.kpis().collect();
        let all: BTreeSet<&str> = catalogue.kpis.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(on_board, all, "the IPR reports every KPI");
        let theatres = dashboards.get("theatres").expect("theatres");
        assert!(theatres.visible_to(Some(Role::Theatre)));
        assert!(!theatres.visible_to(Some(Role::CommandCentre)));
        assert!(theatres.visible_to(Some(Role::Admin)));
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let catalogue = catalogue();
        let text = "id = \"mine\"\ntitle = \"Mine\"\naudience = [\"viewer\"]\ngrain = \"week\"\n\
                    filters = [\"site\"]\n\n[[section]]\ntitle = \"A\"\nkpis = [\n  \"ed_4h_performance\",\n  \"ed_4h_perfromance\",\n]\n";
        let e = parse(Path::new("local/mine.toml"), text, &catalogue).unwrap_err();
        assert_eq!(
            e.to_string(),
            "local/mine.toml:11: unknown KPI 'ed_4h_perfromance' (bright kpi list shows them)"
        );
        let text = text
            .replace("\"ed_4h_perfromance\",", "")
            .replace("[\"site\"]", "[\"ward\"]");
        let e = parse(Path::new("local/mine.toml"), &text, &catalogue).unwrap_err();
        assert_eq!(
            e.to_string(),
            "local/mine.toml:5: unknown filter 'ward': no KPI of this dashboard breaks down by it"
        );
        let e = parse(
            Path::new("local/mine.toml"),
            &text.replace("grain = \"week\"", "grain = \"fortnight\""),
            &catalogue,
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        let e = parse(
            Path::new("local/mine.toml"),
            &text.replace("[\"viewer\"]", "[\"porter\"]"),
            &catalogue,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("local/mine.toml:3: "), "{e}");
    }

    #[test]
    fn a_local_folder_adds_and_replaces_dashboards() {
        let catalogue = catalogue();
        let dir = tempfile::tempdir().expect("a folder");
        let mine = "id = \"{id}\"\ntitle = \"{id}\"\naudience = [\"manager\"]\ngrain = \"month\"\n\
                    [[section]]\ntitle = \"A\"\nkpis = [\"bed_occupancy_ga\"]\n";
        std::fs::write(dir.path().join("a.toml"), mine.replace("{id}", "winter")).expect("w");
        std::fs::write(dir.path().join("b.toml"), mine.replace("{id}", "ed")).expect("w");
        let dashboards = Dashboards::load(&catalogue, Some(dir.path())).expect("loads");
        assert_eq!(dashboards.all().len(), 8);
        assert_eq!(
            dashboards.get("ed").expect("ed").kpis().collect::<Vec<_>>(),
            ["bed_occupancy_ga"]
        );
        std::fs::write(dir.path().join("c.toml"), mine.replace("{id}", "winter")).expect("w");
        let e = Dashboards::load(&catalogue, Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("also used by"), "{e}");
    }
}
