//! Raven's settings from the environment and a `.env` file, under today's names and the
//! original RDF's (`RAVENVERSE_URL`, `TOKEN`, `RAVENVERSE_FTP_HOST` / `RAVENVERSE_FTP_URL`;
//! ravsock adds `RAVENVERSE_DATABASE_URI`), so that a provider, requester or server set up the
//! original's way runs unchanged.
//!
//! A value is looked up in this order, first found wins: today's name in the process
//! environment, today's name in `.env`, a value the caller derived ([`Env::derive`], e.g.
//! ravsock's database URL translated from SQLAlchemy's form), then each of the original's
//! names the same way. So today's names win when both are set, and the shell wins over the
//! file. `.env` is found as dotenvy finds it (the working directory, then its parents) and
//! read with dotenvy. The process environment is never changed (the workspace forbids
//! `unsafe`, which `set_var` needs): binaries get the settings as flags ([`args_with_env`]).

use std::collections::HashMap;
use std::path::PathBuf;

/// ravsock's URL.
pub const URL: &str = "RAVSOCK_URL";
/// The account's token.
pub const TOKEN: &str = "RAVSOCK_TOKEN";
/// The host to reach ravsock's ravftp at, when it differs from the URL's host (the port
/// always comes from ravsock's answer).
pub const FTP_HOST: &str = "RAVSOCK_FTP_HOST";
/// A PEM file with the private CA that signed ravsock's certificate (`--ca-cert`).
pub const CA_CERT: &str = "RAVSOCK_CA_CERT";
/// `true` or `1` lets a client send its token over plain `http://` to another machine
/// (`--insecure`).
pub const INSECURE: &str = "RAVSOCK_INSECURE";

/// Today's names and the original's names for the same setting.
pub const ALIASES: &[(&str, &[&str])] = &[
    (URL, &["RAVENVERSE_URL"]),
    (TOKEN, &["TOKEN"]),
    // ravop read `RAVENVERSE_FTP_HOST`, ravpy `RAVENVERSE_FTP_URL`; both mean the same host.
    (FTP_HOST, &["RAVENVERSE_FTP_HOST", "RAVENVERSE_FTP_URL"]),
];

/// A `.env` file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {reason}")]
pub struct EnvFileError {
    /// The file.
    pub path: String,
    /// dotenvy's reason (with the line for a malformed one).
    pub reason: String,
}

/// The process environment and the `.env` file's pairs.
#[derive(Clone, Debug, Default)]
pub struct Env {
    file: HashMap<String, String>,
    derived: HashMap<String, String>,
    path: Option<PathBuf>,
}

impl Env {
    /// The environment with `./.env` (or the nearest parent's); no file is no error.
    pub fn load() -> Result<Env, EnvFileError> {
        let path = std::env::current_dir().ok().and_then(|dir| find(&dir));
        match path {
            Some(path) => Env::from_file(path),
            None => Ok(Env::default()),
        }
    }

    /// The environment with the pairs of this file.
    pub fn from_file(path: PathBuf) -> Result<Env, EnvFileError> {
        let failed = |reason: String| EnvFileError { path: path.display().to_string(), reason };
        let pairs = dotenvy::from_path_iter(&path).map_err(|e| failed(e.to_string()))?;
        let file = pairs.collect::<Result<HashMap<_, _>, _>>().map_err(|e| failed(e.to_string()))?;
        Ok(Env { file, derived: HashMap::new(), path: Some(path) })
    }

    /// The `.env` file read, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The setting `name` (one of today's names), by the order in the module docs.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.one(name).or_else(|| self.derived.get(name).cloned()) {
            return Some(value);
        }
        let originals = ALIASES.iter().find(|(today, _)| *today == name).map_or(&[][..], |(_, old)| *old);
        originals.iter().find_map(|key| self.one(key))
    }

    /// The first of `names` that is set (process, then `.env`), with its value: for settings
    /// whose original form needs translating before use.
    pub fn first_set<'a>(&self, names: &[&'a str]) -> Option<(&'a str, String)> {
        names.iter().find_map(|&key| Some((key, self.one(key)?)))
    }

    /// Gives `name` a value below today's name and above the original's (see the module docs).
    pub fn derive(&mut self, name: &str, value: String) {
        self.derived.insert(name.to_string(), value);
    }

    /// Names set in `.env`.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.file.keys().map(String::as_str)
    }

    fn one(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().or_else(|| self.file.get(key).cloned()).filter(|v| !v.is_empty())
    }
}

/// `.env` in `dir` or the nearest parent, as dotenvy's `dotenv()` finds it.
fn find(dir: &std::path::Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join(".env")).find(|p| p.is_file())
}

#[cfg(feature = "clap")]
mod args;
#[cfg(feature = "clap")]
pub use args::args_with_env;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("ravclient-env-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, text).unwrap();
        let env = Env::from_file(path).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        env
    }

    // Names no other test or CI sets; the process environment is only read here.
    #[test]
    fn the_originals_names_are_read_and_todays_win() {
        let old = env("RAVENVERSE_URL=http://127.0.0.1:8081\nTOKEN=\"abc\"\nRAVENVERSE_FTP_URL=127.0.0.1\n");
        assert_eq!(old.get(URL).as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(old.get(TOKEN).as_deref(), Some("abc"));
        assert_eq!(old.get(FTP_HOST).as_deref(), Some("127.0.0.1"));
        let both = env("# comment\nRAVENVERSE_URL=http://old:1\nRAVSOCK_URL=http://new:2\n");
        assert_eq!(both.get(URL).as_deref(), Some("http://new:2"));
        assert_eq!(both.get("RAVSOCK_NOT_A_SETTING"), None);
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("ravclient-env-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, "GOOD=1\nBAD LINE WITHOUT EQUALS\n").unwrap();
        let err = Env::from_file(path).unwrap_err();
        std::fs::remove_dir_all(dir).unwrap();
        assert!(err.to_string().starts_with("cannot read ") && err.to_string().contains(".env"), "{err}");
    }
}
