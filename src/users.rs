//! `bright users add|list|remove|passwd`: the people who log in to the pages, kept in the
//! embedded user store (`bright_dashboards::users`); `bright kiosk new|list|revoke`: the
//! read-only links of wall screens, kept in the same store.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bright_dashboards::users::{Role, UserStore, new_password};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct StoreArg {
    /// The user store (an SQLite file, created if missing). Keep it private: it holds the
    /// password hashes.
    #[arg(
        long,
        env = "BRIGHT_USERS_DB",
        default_value = "./bright-users.sqlite3"
    )]
    db: PathBuf,
}

impl StoreArg {
    fn open(&self) -> Result<UserStore> {
        UserStore::open(&self.db)
            .with_context(|| format!("cannot open the user store {}", self.db.display()))
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a person; prints a one-time password unless --password-stdin gives one.
    Add {
        /// Their user name: lower-case letters, digits, '.', '-', '_'.
        name: String,
        /// What they may see and do: viewer, manager, theatre, command_centre, analyst, admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List everyone with their role.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Remove a person.
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Set a person's password; prints a new one-time password unless --password-stdin.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArg,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: bright_dashboards::users::UsersError| e.to_string())
}

/// The password to set: the first line of standard input, or a new random one (printed).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((
            new_password().context("no randomness from the system")?,
            true,
        ));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Password (one line):");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok((line, false))
}

pub fn users_command(command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Add {
            name,
            role,
            password_stdin,
            store,
        } => {
            let (password, generated) = password(password_stdin)?;
            let user = store.open()?.add(&name, role, &password)?;
            println!("Added {} ({}).", user.name, user.role.as_str());
            if generated {
                println!("One-time password: {password}");
                println!("Hand it over privately; they can change it with `bright users passwd`.");
            }
        }
        UsersCommand::List { store } => {
            let users = store.open()?.list()?;
            println!("{:<24} {:<15} created", "name", "role");
            for user in users {
                println!(
                    "{:<24} {:<15} {}",
                    user.name,
                    user.role.as_str(),
                    user.created_at
                );
            }
        }
        UsersCommand::Remove { name, store } => {
            store.open()?.remove(&name)?;
            println!("Removed {name}.");
        }
        UsersCommand::Passwd {
            name,
            password_stdin,
            store,
        } => {
            let (password, generated) = password(password_stdin)?;
            store.open()?.set_password(&name, &password)?;
            println!("Password of {name} changed.");
            if generated {
                println!("One-time password: {password}");
            }
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum KioskCommand {
    /// Make a read-only link for a wall screen; prints it once (only its hash is kept).
    New {
        /// The board it shows: theatres.
        #[arg(long)]
        board: String,
        /// Only this site's rooms.
        #[arg(long)]
        site: Option<String>,
        /// Where the screen is, so it can be found again to revoke.
        #[arg(long)]
        label: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the kiosk links, revoked ones included.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a kiosk link: its screen stops showing the board at once.
    Revoke {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub fn kiosk_command(command: KioskCommand) -> Result<()> {
    match command {
        KioskCommand::New {
            board,
            site,
            label,
            store,
        } => {
            let (kiosk, token) = store.open()?.add_kiosk(&board, site.as_deref(), &label)?;
            println!(
                "Kiosk link {} for {} ({}).",
                kiosk.id, kiosk.board, kiosk.label
            );
            println!("Open on the screen: /kiosk/{token}");
            println!("Anyone with the link sees the board: hand it over privately.");
        }
        KioskCommand::List { store } => {
            println!(
                "{:<10} {:<10} {:<16} {:<26} label",
                "id", "board", "site", "state"
            );
            for kiosk in store.open()?.kiosks()? {
                let state = kiosk
                    .revoked_at
                    .map_or("active".to_string(), |at| format!("revoked {at}"));
                println!(
                    "{:<10} {:<10} {:<16} {:<26} {}",
                    kiosk.id,
                    kiosk.board,
                    kiosk.site.as_deref().unwrap_or("all"),
                    state,
                    kiosk.label
                );
            }
        }
        KioskCommand::Revoke { id, store } => {
            store.open()?.revoke_kiosk(&id)?;
            println!("Kiosk link {id} revoked.");
        }
    }
    Ok(())
}
