//! Service bindings as the servicebinding.io convention projects them: a
//! directory `$SERVICE_BINDING_ROOT/<name>/` with one file per entry, `type`
//! always among them. The kubelet writes such volumes atomically through
//! `..data` symlinks, which are not entries.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The variable naming the directory of the bindings.
pub const ROOT_ENV: &str = "SERVICE_BINDING_ROOT";

#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("{ROOT_ENV} is not set: this pod has no service bindings")]
    RootNotSet,
    #[error("binding {name:?}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: String,
        source: io::Error,
    },
    #[error("binding {name:?}: entry {entry:?} is not valid UTF-8")]
    NotUnicode { name: String, entry: String },
    #[error("binding {name:?} is of type {found:?}, not {expected:?}")]
    WrongType {
        name: String,
        found: String,
        expected: String,
    },
}

pub struct Binding {
    name: String,
    dir: PathBuf,
}

impl Binding {
    /// The binding `name` under `$SERVICE_BINDING_ROOT`.
    pub fn open(name: &str) -> Result<Self, BindingError> {
        let root = env::var_os(ROOT_ENV).ok_or(BindingError::RootNotSet)?;
        Ok(Self::at(Path::new(&root), name))
    }

    /// The binding `name` under `root`.
    pub fn at(root: &Path, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dir: root.join(name),
        }
    }

    /// The binding, if it is of `expected` type.
    pub fn of_type(self, expected: &str) -> Result<Self, BindingError> {
        let found = self.entry("type")?;
        if found.trim() == expected {
            Ok(self)
        } else {
            Err(BindingError::WrongType {
                name: self.name,
                found,
                expected: expected.to_owned(),
            })
        }
    }

    /// One entry's value, as written (no newline is added by projection).
    pub fn entry(&self, entry: &str) -> Result<String, BindingError> {
        let path = self.dir.join(entry);
        let bytes = fs::read(&path).map_err(|source| BindingError::Read {
            name: self.name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        String::from_utf8(bytes).map_err(|_| BindingError::NotUnicode {
            name: self.name.clone(),
            entry: entry.to_owned(),
        })
    }

    /// Every entry, by name.
    pub fn entries(&self) -> Result<BTreeMap<String, String>, BindingError> {
        let read_err = |source| BindingError::Read {
            name: self.name.clone(),
            path: self.dir.display().to_string(),
            source,
        };
        let mut entries = BTreeMap::new();
        for item in fs::read_dir(&self.dir).map_err(read_err)? {
            let name = item.map_err(read_err)?.file_name();
            let Some(name) = name.to_str().filter(|n| !n.starts_with("..")) else {
                continue;
            };
            entries.insert(name.to_owned(), self.entry(name)?);
        }
        Ok(entries)
    }
}

/// Entries whose value is a secret, by the names the convention uses.
pub fn is_secret(entry: &str) -> bool {
    entry == "uri"
        || ["password", "secret", "key", "token", "certificate"]
            .iter()
            .any(|word| entry.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(entries: &[(&str, &str)]) -> PathBuf {
        let root = env::temp_dir().join(format!(
            "session-demo-binding-{}-{}",
            std::process::id(),
            entries.len()
        ));
        let dir = root.join("store");
        fs::create_dir_all(&dir).expect("temp dir");
        for (name, value) in entries {
            fs::write(dir.join(name), value).expect("write entry");
        }
        // What the kubelet's atomic writer leaves beside the entries.
        fs::create_dir_all(dir.join("..data")).expect("..data");
        root
    }

    #[test]
    fn entries_are_the_files_and_the_type_is_checked() {
        let root = dir(&[
            ("type", "redis"),
            ("uri", "redis://h:6379/0"),
            ("port", "6379"),
        ]);
        let binding = Binding::at(&root, "store").of_type("redis").expect("redis");
        assert_eq!(binding.entry("uri").expect("uri"), "redis://h:6379/0");
        let names: Vec<String> = binding.entries().expect("entries").into_keys().collect();
        assert_eq!(names, ["port", "type", "uri"]);
        let wrong = Binding::at(&root, "store").of_type("s3").err();
        assert!(
            matches!(wrong, Some(BindingError::WrongType { .. })),
            "{wrong:?}"
        );
        let missing = Binding::at(&root, "other").entry("type").err();
        assert!(
            matches!(missing, Some(BindingError::Read { .. })),
            "{missing:?}"
        );
        fs::remove_dir_all(root).ok();
    }

    #[test]
    fn secret_entries_are_told_by_name() {
        for secret in [
            "password",
            "uri",
            "secret-access-key",
            "access-key-id",
            "private-key",
        ] {
            assert!(is_secret(secret), "{secret}");
        }
        for plain in [
            "type", "provider", "host", "port", "bucket", "region", "username",
        ] {
            assert!(!is_secret(plain), "{plain}");
        }
    }
}
