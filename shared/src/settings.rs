//! Typed settings read once at start-up (ARCHITECTURE.md: settings.rs per function). Every
//! getter names its variable in the error, so a bad value stops the process with a message
//! that says which one; nothing falls back to a default silently, and nothing writes the
//! environment. A blank value counts as unset.

use std::str::FromStr;
use std::time::Duration;

/// A bad setting: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingError {
    pub name: String,
    pub problem: String,
}

/// Reads one variable.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where settings come from: the process environment, or pairs in tests.
pub struct Env {
    lookup: Lookup,
}

impl Env {
    pub fn process() -> Self {
        Self { lookup: Box::new(|name| std::env::var(name).ok()) }
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self { lookup: Box::new(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())) }
    }

    /// The trimmed value, `None` when unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A value parsed as `T`, or `default` when unset.
    pub fn parse<T: FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T, SettingError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| error(name, format!("expected {expected}, got `{raw}`"))),
        }
    }

    /// A positive whole number of seconds.
    pub fn seconds(&self, name: &str, default: Duration) -> Result<Duration, SettingError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| error(name, format!("expected a positive number of seconds, got `{raw}`"))),
        }
    }

    /// A positive whole number, or `None` when unset.
    pub fn count(&self, name: &str) -> Result<Option<u64>, SettingError> {
        self.text(name)
            .map(|raw| raw.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| error(name, format!("expected a positive whole number, got `{raw}`"))))
            .transpose()
    }

    /// A whole number of milliseconds up to `max_ms`.
    pub fn millis(&self, name: &str, default: Duration, max_ms: u64) -> Result<Duration, SettingError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= max_ms)
                .map(Duration::from_millis)
                .ok_or_else(|| error(name, format!("expected 0-{max_ms} milliseconds, got `{raw}`"))),
        }
    }

    /// `1`/`true`/`0`/`false`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        match self.text(name).as_deref() {
            None => Ok(default),
            Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(error(name, format!("expected 0 or 1, got `{other}`"))),
        }
    }

    /// One of `allowed`.
    pub fn choice(&self, name: &str, allowed: &[&'static str], default: &'static str) -> Result<&'static str, SettingError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => allowed.iter().copied().find(|a| *a == raw).ok_or_else(|| error(name, format!("expected one of {}, got `{raw}`", allowed.join(", ")))),
        }
    }
}

fn error(name: &str, problem: String) -> SettingError {
    SettingError { name: name.to_owned(), problem }
}

/// Why a registry's document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("registry file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("no registry configured: set {json_var} or {file_var}")]
    NotConfigured { json_var: &'static str, file_var: &'static str },
}

/// A registry's JSON document (agencies, clients): the variable `json_var`, else the file named
/// by `file_var`, else `dev_seed`, which is refused on Lambda because its secrets are public.
pub fn registry_document(json_var: &'static str, file_var: &'static str, dev_seed: &'static str) -> Result<String, SourceError> {
    let env = Env::process();
    if let Some(json) = env.text(json_var) {
        return Ok(json);
    }
    if let Some(path) = env.text(file_var) {
        return std::fs::read_to_string(&path).map_err(|source| SourceError::Io { path, source });
    }
    if crate::runtime::on_lambda() {
        return Err(SourceError::NotConfigured { json_var, file_var });
    }
    Ok(dev_seed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_its_variable_and_blank_means_unset() {
        let env = Env::from_pairs(&[("TTL", "soon"), ("ZERO", "0"), ("BLANK", "  "), ("MODE", "queue"), ("ON", "yes")]);
        assert_eq!(env.seconds("TTL", Duration::ZERO).unwrap_err().name, "TTL");
        assert!(env.seconds("ZERO", Duration::ZERO).is_err(), "zero seconds is no interval");
        assert_eq!(env.seconds("BLANK", Duration::from_secs(5)), Ok(Duration::from_secs(5)));
        assert_eq!(env.choice("MODE", &["api", "queue"], "queue"), Ok("queue"));
        assert!(env.choice("MODE", &["http"], "http").unwrap_err().to_string().starts_with("MODE: "));
        assert!(env.flag("ON", false).is_err());
        assert_eq!(env.parse::<u64>("MISSING", 7, "a number"), Ok(7));
    }
}
