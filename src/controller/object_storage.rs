//! The object storage credentials, checked (purely, on what observe read)
//! before anything is applied: a missing Secret or key then shows as the
//! app's Ready condition saying what to create, instead of pods stuck in
//! CreateContainerConfigError.

use std::sync::Arc;

use super::Error;
use super::observe::Content;
use crate::crd::{ConfigKind, ConfigRef, StatelessApp};

/// Field paths named in the messages.
const ACCESS_KEY_ID_FIELD: &str = "spec.objectStorage.credentials.accessKeyIdKey";
const SECRET_ACCESS_KEY_FIELD: &str = "spec.objectStorage.credentials.secretAccessKeyKey";

/// The credentials Secret exists and holds both keys (nothing to check
/// without `objectStorage`).
pub(super) fn check_credentials(
    app: &StatelessApp,
    namespace: &str,
    referenced: &[(ConfigRef, Option<Arc<Content>>)],
) -> Result<(), Error> {
    let Some(storage) = &app.spec.object_storage else {
        return Ok(());
    };
    let credentials = &storage.credentials;
    let content = referenced
        .iter()
        .find(|(r, _)| r.kind == ConfigKind::Secret && r.name == credentials.secret_name)
        .and_then(|(_, content)| content.as_ref());
    let Some(content) = content else {
        return Err(Error::ObjectStorageSecretNotFound {
            namespace: namespace.into(),
            name: credentials.secret_name.clone(),
            access_key_id_key: credentials.access_key_id_key.clone(),
            secret_access_key_key: credentials.secret_access_key_key.clone(),
        });
    };
    for (key, field) in [
        (&credentials.access_key_id_key, ACCESS_KEY_ID_FIELD),
        (&credentials.secret_access_key_key, SECRET_ACCESS_KEY_FIELD),
    ] {
        if !content.keys.contains(key) {
            return Err(Error::ObjectStorageSecretKeyMissing {
                namespace: namespace.into(),
                name: credentials.secret_name.clone(),
                key: key.clone(),
                field,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ObjectStorageCredentials, ObjectStorageSpec, StatelessAppSpec};

    fn app(storage: Option<ObjectStorageSpec>) -> StatelessApp {
        let mut spec = StatelessAppSpec::with_image("shop:1");
        spec.object_storage = storage.map(Box::new);
        StatelessApp::new("shop", spec)
    }

    fn storage() -> ObjectStorageSpec {
        ObjectStorageSpec {
            bucket: "uploads".into(),
            endpoint: None,
            region: None,
            force_path_style: false,
            credentials: ObjectStorageCredentials::in_secret("s3"),
        }
    }

    fn secret_with(keys: &[&str]) -> (ConfigRef, Option<Arc<Content>>) {
        let content = Content {
            uid: None,
            version: None,
            digest: String::new(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            config_map: None,
            managed_consistent: false,
        };
        (ConfigRef::secret("s3"), Some(Arc::new(content)))
    }

    #[test]
    fn without_object_storage_there_is_nothing_to_check() {
        assert!(check_credentials(&app(None), "prod", &[]).is_ok());
    }

    #[test]
    fn a_missing_secret_names_it_and_the_keys_it_needs() {
        let absent = [(ConfigRef::secret("s3"), None)];
        let err = check_credentials(&app(Some(storage())), "prod", &absent).unwrap_err();
        assert_eq!(err.reason(), "ObjectStorageSecretNotFound");
        let message = err.to_string();
        for part in ["prod/s3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[test]
    fn a_missing_key_names_the_key_and_its_field() {
        let only_id = [secret_with(&["AWS_ACCESS_KEY_ID"])];
        let err = check_credentials(&app(Some(storage())), "prod", &only_id).unwrap_err();
        assert_eq!(err.reason(), "ObjectStorageSecretKeyMissing");
        let message = err.to_string();
        assert!(message.contains("\"AWS_SECRET_ACCESS_KEY\""), "{message}");
        assert!(message.contains(SECRET_ACCESS_KEY_FIELD), "{message}");
    }

    #[test]
    fn a_secret_with_both_keys_passes() {
        let both = [secret_with(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])];
        assert!(check_credentials(&app(Some(storage())), "prod", &both).is_ok());
    }
}
