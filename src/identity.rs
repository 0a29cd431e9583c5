//! Who the operator is to the API server: the username its requests carry
//! (`system:serviceaccount:<namespace>:<name>` in a pod, the kubeconfig's
//! user outside one), from a SelfSubjectReview.
//!
//! The webhook lets through unreviewed only the children the operator
//! applies itself: a request from this user for an object that a
//! StatelessApp controls. Anyone else's object is reviewed, whatever
//! ownerReferences it claims.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;
use kube::{Api, Client};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("asking the API server who the operator is (SelfSubjectReview): {0}")]
    Kube(#[source] Box<kube::Error>),
    #[error(
        "asking the API server who the operator is (SelfSubjectReview): no answer within {0:?}"
    )]
    Timeout(Duration),
    #[error("the API server's SelfSubjectReview names no user")]
    NoUser,
}

/// One request's time limit.
const ASK_WITHIN: Duration = Duration::from_secs(5);

/// The operator's username, asked once.
pub async fn whoami(client: &Client) -> Result<String, IdentityError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = tokio::time::timeout(
        ASK_WITHIN,
        api.create(&PostParams::default(), &SelfSubjectReview::default()),
    )
    .await
    .map_err(|_| IdentityError::Timeout(ASK_WITHIN))?
    .map_err(|e| IdentityError::Kube(Box::new(e)))?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or(IdentityError::NoUser)
}

/// The operator's username once known: asked in the background until the
/// API server answers (it may be away at start). Until then it is `None`,
/// and nothing counts as the operator's.
#[derive(Clone, Debug, Default)]
pub struct OperatorUser(Arc<OnceLock<String>>);

impl OperatorUser {
    /// Already known (tests, benchmarks).
    pub fn known(user: &str) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(user.to_string());
        Self(Arc::new(cell))
    }

    /// Ask until answered, or until `shutdown`.
    pub fn resolve(
        client: Client,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let user = Self::default();
        let cell = user.0.clone();
        tokio::spawn(async move {
            let ask = async {
                let mut warned = false;
                loop {
                    match whoami(&client).await {
                        Ok(name) => {
                            tracing::info!(user = %name, "the operator's API identity");
                            let _ = cell.set(name);
                            return;
                        }
                        Err(e) if !warned => {
                            tracing::warn!(
                                "{e}; retrying (until then the operator's own children are reviewed like anyone's)"
                            );
                            warned = true;
                        }
                        Err(e) => tracing::debug!("{e}; retrying"),
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            };
            tokio::select! {
                () = ask => {}
                () = shutdown => {}
            }
        });
        user
    }

    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_unknown_until_set() {
        assert_eq!(OperatorUser::default().get(), None);
        let known = OperatorUser::known("system:serviceaccount:ops:stateless-operator");
        assert_eq!(
            known.get(),
            Some("system:serviceaccount:ops:stateless-operator")
        );
        assert_eq!(known.clone().get(), known.get(), "clones share the answer");
    }
}
