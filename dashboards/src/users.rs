//! People who log in to bright's pages: their names, roles and password hashes, in an embedded
//! SQLite database (a real transactional store with no server to run) that survives restarts
//! and crashes — every change is one transaction, synced before it returns.
//!
//! Passwords are kept only as argon2id hashes (the PHC string, salt included). Checking a
//! password costs the same whether or not the name exists, so the time of a failed login does
//! not tell an attacker which names are real.
//!
//! Sessions live here too: a random token per login (the browser's cookie; the store keeps
//! only its SHA-256), a CSRF token for the person's forms, an idle and an absolute limit, and
//! logout that deletes the row. Repeated failed logins for a name wait longer and longer.
//! Each person's favourite dashboards and saved views (a page with its filters, named) are
//! kept here as well, and go when the person does.

use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::token_sha256;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What a person may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the dashboards and the Integrated Performance Report.
    Viewer,
    /// A viewer who may also annotate and rebase charts.
    Manager,
    /// The theatre trackboard and report.
    Theatre,
    /// The command-centre wall.
    CommandCentre,
    /// SQL over the lake.
    Analyst,
    /// Everything, and the people.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Manager,
        Role::Theatre,
        Role::CommandCentre,
        Role::Analyst,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Manager => "manager",
            Role::Theatre => "theatre",
            Role::CommandCentre => "command_centre",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UsersError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UsersError::UnknownRole {
                role: s.to_string(),
            })
    }
}

/// A person, without their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// When the account was made (RFC 3339, UTC).
    pub created_at: String,
}

/// Why a change to the people was refused, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("unknown role '{role}' (viewer, manager, theatre, command_centre, analyst, admin)")]
    UnknownRole { role: String },
    #[error("'{name}' is not a user name: 1 to 64 lower-case letters, digits, '.', '-' or '_'")]
    BadName { name: String },
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    #[error("there is already a user '{name}'")]
    Exists { name: String },
    #[error("there is no user '{name}'")]
    NoSuchUser { name: String },
    #[error("{0}")]
    BadView(String),
    #[error("unknown board '{board}' (a kiosk link shows one of: {})", KIOSK_BOARDS.join(", "))]
    UnknownBoard { board: String },
    #[error("there is no kiosk link '{id}'")]
    NoSuchKiosk { id: String },
    #[error("the user store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("password hashing: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("no randomness from the system: {0}")]
    Random(getrandom::Error),
    /// A stored hash that cannot be read back: the store was edited by hand or damaged.
    #[error("the stored password hash of a user is unreadable: {0}")]
    BadHash(argon2::password_hash::phc::Error),
}

/// The store of people.
#[derive(Debug)]
pub struct UserStore {
    db: Mutex<Connection>,
    /// A hash of no one's password, checked when a name is unknown (see the module notes).
    /// Made on the first unknown name, not at start-up: opening the store for `bright users
    /// list` or a server start need not pay for a hash.
    decoy: std::sync::OnceLock<String>,
}

fn hash(password: &str) -> Result<String, UsersError> {
    // Argon2id with the library's defaults (OWASP's recommended minimum: 19 MiB, 2 passes).
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(UsersError::Hash)
}

fn valid_name(name: &str) -> Result<(), UsersError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UsersError::BadName {
            name: name.chars().take(80).collect(),
        })
    }
}

fn valid_password(password: &str) -> Result<(), UsersError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UsersError::ShortPassword);
    }
    Ok(())
}

impl UserStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<UserStore, UsersError> {
        let db = Connection::open(path)?;
        // WAL keeps readers off the writer's way; FULL syncs every commit, so a change that
        // returned survives a crash or power cut.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at TEXT NOT NULL
            ) STRICT;
            CREATE TABLE IF NOT EXISTS sessions (
                token_sha256 TEXT PRIMARY KEY,
                name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                csrf TEXT NOT NULL,
                started INTEGER NOT NULL,
                last_seen INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE IF NOT EXISTS login_failures (
                name TEXT PRIMARY KEY,
                failures INTEGER NOT NULL,
                last_failure INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE IF NOT EXISTS favourites (
                name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                dashboard TEXT NOT NULL,
                added_at TEXT NOT NULL,
                PRIMARY KEY (name, dashboard)
            ) STRICT;
            CREATE TABLE IF NOT EXISTS saved_views (
                name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                label TEXT NOT NULL,
                path TEXT NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (name, label)
            ) STRICT;
            CREATE TABLE IF NOT EXISTS saved_queries (
                name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                label TEXT NOT NULL,
                sql TEXT NOT NULL,
                saved_at TEXT NOT NULL,
                PRIMARY KEY (name, label)
            ) STRICT;
            CREATE TABLE IF NOT EXISTS kiosks (
                id TEXT PRIMARY KEY,
                token_sha256 TEXT NOT NULL UNIQUE,
                board TEXT NOT NULL,
                site TEXT,
                label TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            ) STRICT;",
        )?;
        Ok(UserStore {
            db: Mutex::new(db),
            decoy: std::sync::OnceLock::new(),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each change is one
        // transaction), so a poisoned lock is still safe to use.
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a person.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<User, UsersError> {
        valid_name(name)?;
        valid_password(password)?;
        let hashed = hash(password)?;
        let created_at = now_rfc3339();
        let inserted = self.db().execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, role.as_str(), hashed, created_at],
        )?;
        if inserted == 0 {
            return Err(UsersError::Exists {
                name: name.to_string(),
            });
        }
        Ok(User {
            name: name.to_string(),
            role,
            created_at,
        })
    }

    /// Everyone, by name.
    pub fn list(&self) -> Result<Vec<User>, UsersError> {
        let db = self.db();
        let mut query = db.prepare("SELECT name, role, created_at FROM users ORDER BY name")?;
        let rows = query.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut users = Vec::new();
        for row in rows {
            let (name, role, created_at) = row?;
            users.push(User {
                name,
                role: role.parse()?,
                created_at,
            });
        }
        Ok(users)
    }

    /// Removes a person.
    pub fn remove(&self, name: &str) -> Result<(), UsersError> {
        match self
            .db()
            .execute("DELETE FROM users WHERE name = ?1", params![name])?
        {
            0 => Err(UsersError::NoSuchUser {
                name: name.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Sets a person's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UsersError> {
        valid_password(password)?;
        let hashed = hash(password)?;
        match self.db().execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![name, hashed],
        )? {
            0 => Err(UsersError::NoSuchUser {
                name: name.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The person, when `password` is theirs; `None` for a wrong password or an unknown name
    /// (the two are not told apart, and take as long).
    pub fn verify(&self, name: &str, password: &str) -> Result<Option<User>, UsersError> {
        let found = self
            .db()
            .query_row(
                "SELECT role, password_hash, created_at FROM users WHERE name = ?1",
                params![name],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        let stored = match &found {
            Some((_, stored, _)) => stored.as_str(),
            None => match self.decoy.get() {
                Some(decoy) => decoy.as_str(),
                None => {
                    let decoy = hash("a password that belongs to no one")?;
                    self.decoy.get_or_init(|| decoy).as_str()
                }
            },
        };
        let parsed = PasswordHash::new(stored).map_err(UsersError::BadHash)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        match found {
            Some((role, _, created_at)) if matches => Ok(Some(User {
                name: name.to_string(),
                role: role.parse()?,
                created_at,
            })),
            _ => Ok(None),
        }
    }
}

/// A view a person saved: a page of bright with its filters, under their own name for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedView {
    pub label: String,
    /// The page and its query string (`/dashboards/ed?site=RXN01&grain=week`).
    pub path: String,
    pub created_at: String,
}

/// An analyst's statement kept under a name (`/sql`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedQuery {
    pub label: String,
    pub sql: String,
    pub saved_at: String,
}

/// Longest statement kept: what a page's form can carry.
pub const MAX_SAVED_SQL_BYTES: usize = 12 * 1024;

/// Longest name of a saved view.
pub const MAX_VIEW_LABEL_CHARS: usize = 80;
/// Longest path of a saved view.
const MAX_VIEW_PATH_CHARS: usize = 1_000;

/// A page a view may be saved of: a dashboard, a KPI or the IPR, as a plain path of bright's.
fn valid_view(label: &str, path: &str) -> Result<(), UsersError> {
    let label_ok = (1..=MAX_VIEW_LABEL_CHARS).contains(&label.trim().chars().count())
        && !label.chars().any(char::is_control);
    if !label_ok {
        return Err(UsersError::BadView(format!(
            "a saved view needs a name of 1 to {MAX_VIEW_LABEL_CHARS} characters"
        )));
    }
    let page = path.split('?').next().unwrap_or("");
    let path_ok = path.len() <= MAX_VIEW_PATH_CHARS
        && (page == "/ipr" || page.starts_with("/dashboards/") || page.starts_with("/kpi/"))
        && !path.contains("//")
        && !path.contains(['\\', '#'])
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    if !path_ok {
        return Err(UsersError::BadView(
            "only a dashboard, a KPI page or the IPR can be saved as a view".into(),
        ));
    }
    Ok(())
}

impl UserStore {
    /// Pins (`pinned`) or unpins dashboard `dashboard` for `name`.
    pub fn set_favourite(
        &self,
        name: &str,
        dashboard: &str,
        pinned: bool,
    ) -> Result<(), UsersError> {
        if pinned {
            self.db().execute(
                "INSERT INTO favourites (name, dashboard, added_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, dashboard) DO NOTHING",
                params![name, dashboard, now_rfc3339()],
            )?;
        } else {
            self.db().execute(
                "DELETE FROM favourites WHERE name = ?1 AND dashboard = ?2",
                params![name, dashboard],
            )?;
        }
        Ok(())
    }

    /// The dashboards `name` pinned, first pinned first.
    pub fn favourites(&self, name: &str) -> Result<Vec<String>, UsersError> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT dashboard FROM favourites WHERE name = ?1 ORDER BY added_at, dashboard",
        )?;
        let rows = query.query_map(params![name], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves `path` as `name`'s view `label` (replacing one of the same label).
    pub fn save_view(&self, name: &str, label: &str, path: &str) -> Result<SavedView, UsersError> {
        valid_view(label, path)?;
        let label = label.trim();
        let created_at = now_rfc3339();
        self.db().execute(
            "INSERT INTO saved_views (name, label, path, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name, label) DO UPDATE SET path = ?3, created_at = ?4",
            params![name, label, path, created_at],
        )?;
        Ok(SavedView {
            label: label.to_string(),
            path: path.to_string(),
            created_at,
        })
    }

    /// `name`'s saved views, by label.
    pub fn saved_views(&self, name: &str) -> Result<Vec<SavedView>, UsersError> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT label, path, created_at FROM saved_views WHERE name = ?1 ORDER BY label",
        )?;
        let rows = query.query_map(params![name], |row| {
            Ok(SavedView {
                label: row.get(0)?,
                path: row.get(1)?,
                created_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps `sql` as `name`'s query `label` (replacing one of the same label).
    pub fn save_query(&self, name: &str, label: &str, sql: &str) -> Result<SavedQuery, UsersError> {
        let label = label.trim();
        if !(1..=MAX_VIEW_LABEL_CHARS).contains(&label.chars().count())
            || label.chars().any(char::is_control)
        {
            return Err(UsersError::BadView(format!(
                "a saved query needs a name of 1 to {MAX_VIEW_LABEL_CHARS} characters"
            )));
        }
        if sql.trim().is_empty() || sql.len() > MAX_SAVED_SQL_BYTES {
            return Err(UsersError::BadView(format!(
                "a saved query is a statement of 1 to {MAX_SAVED_SQL_BYTES} bytes"
            )));
        }
        let saved_at = now_rfc3339();
        self.db().execute(
            "INSERT INTO saved_queries (name, label, sql, saved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name, label) DO UPDATE SET sql = ?3, saved_at = ?4",
            params![name, label, sql, saved_at],
        )?;
        Ok(SavedQuery {
            label: label.to_string(),
            sql: sql.to_string(),
            saved_at,
        })
    }

    /// `name`'s saved queries, by label.
    pub fn saved_queries(&self, name: &str) -> Result<Vec<SavedQuery>, UsersError> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT label, sql, saved_at FROM saved_queries WHERE name = ?1 ORDER BY label",
        )?;
        let rows = query.query_map(params![name], |row| {
            Ok(SavedQuery {
                label: row.get(0)?,
                sql: row.get(1)?,
                saved_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes `name`'s query `label`; deleting one that is not there is not an error.
    pub fn delete_query(&self, name: &str, label: &str) -> Result<(), UsersError> {
        self.db().execute(
            "DELETE FROM saved_queries WHERE name = ?1 AND label = ?2",
            params![name, label.trim()],
        )?;
        Ok(())
    }

    /// Deletes `name`'s view `label`; deleting one that is not there is not an error.
    pub fn delete_view(&self, name: &str, label: &str) -> Result<(), UsersError> {
        self.db().execute(
            "DELETE FROM saved_views WHERE name = ?1 AND label = ?2",
            params![name, label.trim()],
        )?;
        Ok(())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long a session lasts: idle, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ended after this many seconds without a request.
    pub idle_secs: i64,
    /// Ended this many seconds after the login, however busy.
    pub absolute_secs: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        // A working shift: a screen left alone for half an hour asks again, and nobody stays
        // logged in past twelve hours.
        SessionLimits {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
        }
    }
}

/// A logged-in person: who, and the token their forms must carry (CSRF protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

/// A session's secret as the browser holds it (its cookie's value); the store keeps only its
/// SHA-256, so a copy of the store opens no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken(pub String);

/// A `kiosks` row selected as id, board, site, label, created_at, revoked_at.
fn kiosk_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Kiosk> {
    Ok(Kiosk {
        id: row.get(0)?,
        board: row.get(1)?,
        site: row.get(2)?,
        label: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

/// The boards a kiosk link may show.
pub const KIOSK_BOARDS: [&str; 2] = ["theatres", "command-centre"];

/// A wall screen's read-only link to one board (and a site of it), until revoked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kiosk {
    pub id: String,
    pub board: String,
    pub site: Option<String>,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl UserStore {
    /// Makes a kiosk link for `board` (one of [`KIOSK_BOARDS`]), kept to `site` when given;
    /// returns it with its secret token (only its hash is kept).
    pub fn add_kiosk(
        &self,
        board: &str,
        site: Option<&str>,
        label: &str,
    ) -> Result<(Kiosk, String), UsersError> {
        if !KIOSK_BOARDS.contains(&board) {
            return Err(UsersError::UnknownBoard {
                board: board.to_string(),
            });
        }
        let id = random_hex(4).map_err(UsersError::Random)?;
        let token = random_hex(32).map_err(UsersError::Random)?;
        let kiosk = Kiosk {
            id,
            board: board.to_string(),
            site: site.map(str::to_string),
            label: label.to_string(),
            created_at: now_rfc3339(),
            revoked_at: None,
        };
        self.db().execute(
            "INSERT INTO kiosks (id, token_sha256, board, site, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                kiosk.id,
                token_sha256(&token),
                kiosk.board,
                kiosk.site,
                kiosk.label,
                kiosk.created_at
            ],
        )?;
        Ok((kiosk, token))
    }

    /// The kiosk link of `token`, unless it was revoked.
    pub fn kiosk(&self, token: &str) -> Result<Option<Kiosk>, UsersError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, board, site, label, created_at, revoked_at FROM kiosks
                 WHERE token_sha256 = ?1 AND revoked_at IS NULL",
                params![token_sha256(token)],
                kiosk_row,
            )
            .optional()?)
    }

    /// Every kiosk link, revoked ones included, oldest first.
    pub fn kiosks(&self) -> Result<Vec<Kiosk>, UsersError> {
        let db = self.db();
        let mut statement = db.prepare(
            "SELECT id, board, site, label, created_at, revoked_at FROM kiosks
             ORDER BY created_at, id",
        )?;
        let rows = statement.query_map([], kiosk_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes kiosk link `id`: its screens stop at their next request.
    pub fn revoke_kiosk(&self, id: &str) -> Result<(), UsersError> {
        let changed = self.db().execute(
            "UPDATE kiosks SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_rfc3339()],
        )?;
        if changed == 0 {
            return Err(UsersError::NoSuchKiosk { id: id.to_string() });
        }
        Ok(())
    }
}

fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Seconds a name must wait before its next login attempt after `failures` failures in a
/// row: none for the first few (people mistype), then doubling to a quarter of an hour.
pub fn login_delay_secs(failures: i64) -> i64 {
    match failures {
        ..=3 => 0,
        n => (1i64 << (n - 4).min(10)).min(15 * 60),
    }
}

impl UserStore {
    /// Starts a session for `user` at `now` (seconds since the epoch).
    pub fn start_session(
        &self,
        user: &User,
        now: i64,
    ) -> Result<(SessionToken, Session), UsersError> {
        let token = random_hex(32).map_err(UsersError::Random)?;
        let csrf = random_hex(16).map_err(UsersError::Random)?;
        self.db().execute(
            "INSERT INTO sessions (token_sha256, name, csrf, started, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![token_sha256(&token), user.name, csrf, now],
        )?;
        Ok((
            SessionToken(token),
            Session {
                user: user.clone(),
                csrf,
            },
        ))
    }

    /// Whether the session of `token` is still open at `now` (signed in, not idle or past
    /// its limit), without counting this look as activity: a live page left open must not
    /// keep an unattended session alive.
    pub fn session_open(
        &self,
        token: &str,
        now: i64,
        limits: SessionLimits,
    ) -> Result<bool, UsersError> {
        let found: Option<(i64, i64)> = self
            .db()
            .query_row(
                "SELECT started, last_seen FROM sessions WHERE token_sha256 = ?1",
                params![token_sha256(token)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(found.is_some_and(|(started, last_seen)| {
            now - last_seen <= limits.idle_secs && now - started <= limits.absolute_secs
        }))
    }

    /// The live session of `token` at `now`, its idle clock restarted; `None` (and the
    /// session ended) when it has been idle or alive too long, or was never started.
    pub fn session(
        &self,
        token: &str,
        now: i64,
        limits: SessionLimits,
    ) -> Result<Option<Session>, UsersError> {
        let key = token_sha256(token);
        let db = self.db();
        let found = db
            .query_row(
                "SELECT s.name, s.csrf, s.started, s.last_seen, u.role, u.created_at
                 FROM sessions s JOIN users u ON u.name = s.name WHERE s.token_sha256 = ?1",
                params![key],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((name, csrf, started, last_seen, role, created_at)) = found else {
            return Ok(None);
        };
        if now - last_seen > limits.idle_secs || now - started > limits.absolute_secs {
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?1", params![key])?;
            return Ok(None);
        }
        db.execute(
            "UPDATE sessions SET last_seen = ?2 WHERE token_sha256 = ?1",
            params![key, now],
        )?;
        Ok(Some(Session {
            user: User {
                name,
                role: role.parse()?,
                created_at,
            },
            csrf,
        }))
    }

    /// Ends the session of `token` (logout): the cookie opens nothing afterwards.
    pub fn end_session(&self, token: &str) -> Result<(), UsersError> {
        self.db().execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            params![token_sha256(token)],
        )?;
        Ok(())
    }

    /// Seconds `name` must still wait at `now` before trying to log in again.
    pub fn login_wait_secs(&self, name: &str, now: i64) -> Result<i64, UsersError> {
        let found = self
            .db()
            .query_row(
                "SELECT failures, last_failure FROM login_failures WHERE name = ?1",
                params![name],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()?;
        Ok(found.map_or(0, |(failures, last)| {
            (last + login_delay_secs(failures) - now).max(0)
        }))
    }

    /// Records a login attempt's outcome for `name` (known or not, so waiting does not tell
    /// which names exist).
    pub fn record_login(&self, name: &str, succeeded: bool, now: i64) -> Result<(), UsersError> {
        let name: String = name.chars().take(64).collect();
        if succeeded {
            self.db()
                .execute("DELETE FROM login_failures WHERE name = ?1", params![name])?;
        } else {
            self.db().execute(
                "INSERT INTO login_failures (name, failures, last_failure) VALUES (?1, 1, ?2)
                 ON CONFLICT (name) DO UPDATE SET failures = failures + 1, last_failure = ?2",
                params![name, now],
            )?;
        }
        Ok(())
    }
}

/// A new password to hand over once: 20 characters from an alphabet without look-alikes
/// (about 113 bits), from the operating system's randomness.
pub fn new_password() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)?;
    // 50 symbols: 256 is not a multiple, so bytes above the last whole multiple are redrawn.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(20);
    let mut pool = bytes.to_vec();
    while out.len() < 20 {
        match pool.pop() {
            Some(b) if b < limit => out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()])),
            Some(_) => {}
            None => {
                getrandom::fill(&mut bytes)?;
                pool.extend_from_slice(&bytes);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_added_checked_changed_and_removed_and_outlive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bright.sqlite3");
        let store = UserStore::open(&path).expect("opens");
        let added = store
            .add("j.smith", Role::Manager, "correct horse battery")
            .expect("adds");
        assert_eq!(added.role, Role::Manager);
        assert!(matches!(
            store.add("j.smith", Role::Viewer, "another long password"),
            Err(UsersError::Exists { .. })
        ));
        assert!(matches!(
            store.add("J Smith", Role::Viewer, "another long password"),
            Err(UsersError::BadName { .. })
        ));
        assert!(matches!(
            store.add("short", Role::Viewer, "too short"),
            Err(UsersError::ShortPassword)
        ));
        assert!(matches!(
            "boss".parse::<Role>(),
            Err(UsersError::UnknownRole { .. })
        ));

        assert_eq!(
            store
                .verify("j.smith", "correct horse battery")
                .expect("checks")
                .map(|u| u.role),
            Some(Role::Manager)
        );
        assert_eq!(
            store
                .verify("j.smith", "wrong horse battery")
                .expect("checks"),
            None
        );
        assert_eq!(
            store
                .verify("nobody", "correct horse battery")
                .expect("checks"),
            None
        );
        drop(store);

        // Only an argon2id hash is on disk, never the password.
        let bytes = std::fs::read(&path).expect("reads");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("$argon2id$"), "no argon2id hash stored");
        assert!(!text.contains("correct horse battery"));

        let store = UserStore::open(&path).expect("reopens");
        assert_eq!(
            store
                .list()
                .expect("lists")
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>(),
            ["j.smith"]
        );
        store
            .set_password("j.smith", "a brand new passphrase")
            .expect("changes");
        assert_eq!(
            store
                .verify("j.smith", "correct horse battery")
                .expect("checks"),
            None
        );
        assert!(
            store
                .verify("j.smith", "a brand new passphrase")
                .expect("checks")
                .is_some()
        );
        assert!(matches!(
            store.set_password("nobody", "a brand new passphrase"),
            Err(UsersError::NoSuchUser { .. })
        ));
        store.remove("j.smith").expect("removes");
        assert!(store.list().expect("lists").is_empty());
        assert!(matches!(
            store.remove("j.smith"),
            Err(UsersError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn sessions_end_when_idle_too_long_past_their_limit_or_on_logout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bright.sqlite3");
        let store = UserStore::open(&path).expect("opens");
        let user = store
            .add("ward.manager", Role::Manager, "correct horse battery")
            .expect("adds");
        let limits = SessionLimits {
            idle_secs: 60,
            absolute_secs: 300,
        };
        let (token, started) = store.start_session(&user, 1_000).expect("starts");
        assert_eq!(token.0.len(), 64);
        // Kept alive by use, and across a restart of bright.
        for now in [1_050, 1_100, 1_150, 1_200] {
            let live = store.session(&token.0, now, limits).expect("looks up");
            assert_eq!(live.as_ref(), Some(&started), "at {now}");
        }
        drop(store);
        let store = UserStore::open(&path).expect("reopens");
        assert!(
            store
                .session(&token.0, 1_250, limits)
                .expect("looks up")
                .is_some()
        );
        // Past the absolute limit, however busy.
        assert_eq!(
            store.session(&token.0, 1_301, limits).expect("looks up"),
            None
        );
        assert_eq!(
            store.session(&token.0, 1_302, limits).expect("looks up"),
            None
        );
        // Idle too long; a live page looking at the session does not keep it alive.
        let (idle, _) = store.start_session(&user, 2_000).expect("starts");
        assert!(store.session_open(&idle.0, 2_050, limits).expect("looks"));
        assert!(store.session_open(&idle.0, 2_060, limits).expect("looks"));
        assert!(!store.session_open(&idle.0, 2_061, limits).expect("looks"));
        assert_eq!(
            store.session(&idle.0, 2_061, limits).expect("looks up"),
            None
        );
        // Logout.
        let (out, _) = store.start_session(&user, 3_000).expect("starts");
        store.end_session(&out.0).expect("ends");
        assert_eq!(
            store.session(&out.0, 3_001, limits).expect("looks up"),
            None
        );
        // Removing a person ends their sessions; the store holds no token in clear.
        let (kept, _) = store.start_session(&user, 4_000).expect("starts");
        drop(store);
        let text = String::from_utf8_lossy(&std::fs::read(&path).expect("reads")).to_string();
        assert!(!text.contains(&kept.0));
        let store = UserStore::open(&path).expect("reopens");
        store.remove("ward.manager").expect("removes");
        assert_eq!(
            store.session(&kept.0, 4_001, limits).expect("looks up"),
            None
        );
    }

    #[test]
    fn repeated_failed_logins_wait_longer_and_longer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = UserStore::open(&dir.path().join("u.sqlite3")).expect("opens");
        for n in 0..3 {
            store.record_login("who", false, 100 + n).expect("records");
            assert_eq!(store.login_wait_secs("who", 100 + n).expect("asks"), 0);
        }
        store.record_login("who", false, 200).expect("records");
        assert_eq!(store.login_wait_secs("who", 200).expect("asks"), 1);
        store.record_login("who", false, 201).expect("records");
        assert_eq!(store.login_wait_secs("who", 201).expect("asks"), 2);
        assert_eq!(store.login_wait_secs("who", 203).expect("asks"), 0);
        assert_eq!(login_delay_secs(40), 15 * 60);
        store.record_login("who", true, 300).expect("records");
        assert_eq!(store.login_wait_secs("who", 300).expect("asks"), 0);
        // A name nobody has waits like any other, so waiting does not reveal who exists.
        assert_eq!(store.login_wait_secs("nobody", 300).expect("asks"), 0);
    }

    #[test]
    fn favourites_and_saved_views_are_each_persons_and_outlive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("u.sqlite3");
        let store = UserStore::open(&path).expect("opens");
        store
            .add("ed.lead", Role::Manager, "correct horse battery")
            .expect("adds");
        store
            .add("board.member", Role::Viewer, "correct horse battery")
            .expect("adds");
        store.set_favourite("ed.lead", "ed", true).expect("pins");
        store.set_favourite("ed.lead", "flow", true).expect("pins");
        store
            .set_favourite("ed.lead", "ed", true)
            .expect("pinning twice is fine");
        store
            .save_view(
                "ed.lead",
                "North site, weekly",
                "/dashboards/ed?site=N&grain=week",
            )
            .expect("saves");
        store
            .save_view(
                "ed.lead",
                " North site, weekly ",
                "/dashboards/ed?site=N&grain=month",
            )
            .expect("the same name replaces");
        for (label, path) in [
            ("", "/dashboards/ed"),
            ("elsewhere", "https://example.org/"),
            ("elsewhere", "//example.org/x"),
            ("login", "/login?next=/"),
            ("spaces", "/kpi/x? a"),
        ] {
            assert!(
                matches!(
                    store.save_view("ed.lead", label, path),
                    Err(UsersError::BadView(_))
                ),
                "{label} {path}"
            );
        }
        drop(store);
        let store = UserStore::open(&path).expect("reopens");
        assert_eq!(store.favourites("ed.lead").expect("reads"), ["ed", "flow"]);
        assert!(store.favourites("board.member").expect("reads").is_empty());
        let views = store.saved_views("ed.lead").expect("reads");
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].label, "North site, weekly");
        assert_eq!(views[0].path, "/dashboards/ed?site=N&grain=month");
        store.set_favourite("ed.lead", "ed", false).expect("unpins");
        assert_eq!(store.favourites("ed.lead").expect("reads"), ["flow"]);
        store
            .delete_view("ed.lead", "North site, weekly")
            .expect("deletes");
        assert!(store.saved_views("ed.lead").expect("reads").is_empty());
        store
            .save_view("ed.lead", "IPR", "/ipr?grain=month")
            .expect("saves");
        store.remove("ed.lead").expect("removes");
        assert!(store.saved_views("ed.lead").expect("reads").is_empty());
        assert!(store.favourites("ed.lead").expect("reads").is_empty());
    }

    #[test]
    fn new_passwords_are_long_readable_and_different() {
        let a = new_password().expect("random");
        let b = new_password().expect("random");
        assert_eq!(a.chars().count(), 20);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)),
            "{a}"
        );
        assert!(valid_password(&a).is_ok());
    }
}
