//! The one place generated values are drawn: a Jupyter token, database and admin passwords, a secret
//! key. The plan names the keys a new Secret gets (`Action::CreateOnce`); between the plan and the
//! executor, `fill` gives each a fresh random value. `render` never fills, so no value is printed.

use rand::Rng;
use rand::distr::Alphanumeric;

use super::plan::{Action, Step};

/// A fresh value: 48 characters from 62 symbols, about 285 bits.
pub fn value() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// Gives every Secret the steps create a fresh value for each of its generated keys.
pub fn fill(steps: &mut [Step]) {
    for step in steps {
        if let Action::CreateOnce(secret, keys) = &mut step.action {
            secret.string_data = Some(keys.iter().map(|k| (k.clone(), value())).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    #[test]
    fn each_generated_key_gets_its_own_fresh_value() {
        let mut steps = vec![Step {
            action: Action::CreateOnce(Secret::default(), vec!["a".into(), "b".into()]),
            note: None,
            component: None,
        }];
        fill(&mut steps);
        let Action::CreateOnce(secret, _) = &steps[0].action else {
            unreachable!()
        };
        let values = secret.string_data.as_ref().unwrap();
        assert_eq!(values.len(), 2);
        assert_ne!(values["a"], values["b"]);
        assert!(
            values
                .values()
                .all(|v| v.len() == 48 && v.chars().all(|c| c.is_ascii_alphanumeric()))
        );
    }
}
