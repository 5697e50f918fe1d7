//! User impersonation (`kubectl --as`, `--as-group`): the `Impersonate-User` and `Impersonate-Group`
//! headers switch the request's user once the requester may `impersonate` each of them, as the
//! apiserver's impersonation filter does.

use axum::http::HeaderMap;

use crate::errors::ApiError;
use crate::rbac::{Attributes, Policy, User, forbidden_message};

const USER_HEADER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID_HEADER: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

const ANONYMOUS: &str = "system:anonymous";
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user a request acts as: the authenticated one, or the one it impersonates.
pub fn acting_user(
    policy: &Policy,
    requester: User,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    let requested = values(headers, USER_HEADER)
        .first()
        .copied()
        .unwrap_or_default()
        .to_string();
    let groups_requested = values(headers, GROUP_HEADER);
    let extras = headers.keys().any(|k| k.as_str().starts_with(EXTRA_PREFIX));
    let uid = !values(headers, UID_HEADER).is_empty();
    if requested.is_empty() {
        if !groups_requested.is_empty() || extras || uid {
            // Each request printed as Go prints an ObjectReference with %v: all seven fields, spaced.
            let listed: Vec<String> = groups_requested
                .iter()
                .map(|g| format!("{{Group  {g}    }}"))
                .collect();
            return Err(ApiError::bad_request(format!(
                "requested [{}] without impersonating a user",
                listed.join(" ")
            )));
        }
        return Ok(requester);
    }
    if extras || uid {
        return Err(ApiError::bad_request(
            "kube-sim does not simulate impersonating user extras or UIDs",
        ));
    }

    let check = |resource: &str, namespace: &str, name: &str| -> Result<(), ApiError> {
        let attrs = Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        };
        policy.authorize(&requester, &attrs).map_err(|reason| {
            let mut details = serde_json::json!({"kind": resource});
            if !name.is_empty() {
                details["name"] = serde_json::json!(name);
            }
            ApiError::forbidden(
                forbidden_message(&requester, &attrs, &reason),
                Some(details),
            )
        })
    };

    let mut groups: Vec<String> = Vec::new();
    let service_account = requested
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
    match service_account {
        Some((ns, name)) => {
            check("serviceaccounts", ns, name)?;
            if groups_requested.is_empty() {
                // A service account's groups follow from its namespace.
                groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        None => check("users", "", &requested)?,
    }
    for g in &groups_requested {
        check("groups", "", g)?;
        groups.push(g.to_string());
    }
    if requested != ANONYMOUS {
        if !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            groups.push(AUTHENTICATED.into());
        }
    } else if !groups.iter().any(|g| g == UNAUTHENTICATED) {
        groups.push(UNAUTHENTICATED.into());
    }
    Ok(User {
        name: requested,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn admins_act_as_service_accounts_with_their_groups() {
        let user = acting_user(
            &Policy::default(),
            User::admin(),
            &headers(&[("impersonate-user", "system:serviceaccount:default:op")]),
        )
        .unwrap();
        assert_eq!(user, User::service_account("default", "op"));
        let plain = acting_user(&Policy::default(), User::admin(), &headers(&[])).unwrap();
        assert_eq!(plain, User::admin());
    }

    #[test]
    fn others_need_the_impersonate_verb() {
        let sa = User::service_account("default", "op");
        let e = acting_user(
            &Policy::default(),
            sa,
            &headers(&[("impersonate-user", "alice"), ("impersonate-group", "devs")]),
        )
        .unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "users \"alice\" is forbidden: User \"system:serviceaccount:default:op\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn groups_without_a_user_are_refused() {
        let e = acting_user(
            &Policy::default(),
            User::admin(),
            &headers(&[("impersonate-group", "devs")]),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "requested [{Group  devs    }] without impersonating a user"
        );
    }
}
