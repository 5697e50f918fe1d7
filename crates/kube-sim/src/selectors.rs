//! Label and field selectors, with the syntax and the per-resource field sets of the real apiserver.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

/// The tokens of apimachinery's label selector lexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a selector into tokens as the apimachinery lexer does: operators are the longest run of special
/// characters that is still an operator; anything else up to a special character or blank is an
/// identifier (or the keyword `in`/`notin`).
fn lex(s: &str) -> Vec<(Token, String)> {
    // Go's lexer reads a NUL byte as the end of the input.
    let b = s.as_bytes();
    let b = &b[..b.iter().position(|c| *c == 0).unwrap_or(b.len())];
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_space(b[pos]) {
            pos += 1;
        }
        if pos == b.len() {
            out.push((Token::End, String::new()));
            return out;
        }
        let start = pos;
        if is_special(b[pos]) {
            // Every single special character is an operator, so `last` is set after the first.
            let mut last = (Token::Comma, start);
            while pos < b.len() && is_special(b[pos]) {
                match literal_token(&b[start..=pos]) {
                    Some(t) => last = (t, pos + 1),
                    None if pos > start => break,
                    None => {}
                }
                pos += 1;
            }
            pos = last.1;
            out.push((last.0, String::from_utf8_lossy(&b[start..pos]).into_owned()));
        } else {
            while pos < b.len() && !is_special(b[pos]) && !is_space(b[pos]) {
                pos += 1;
            }
            let lit = &b[start..pos];
            let tok = literal_token(lit).unwrap_or(Token::Identifier);
            out.push((tok, String::from_utf8_lossy(lit).into_owned()));
        }
    }
}

/// apimachinery's label selector parser, with its error wording.
struct Parser {
    items: Vec<(Token, String)>,
    pos: usize,
}

/// Where a token is read: in values, the keywords `in` and `notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn in_context(t: Token, ctx: Context) -> Token {
    match t {
        Token::In | Token::NotIn if ctx == Context::Values => Token::Identifier,
        t => t,
    }
}

impl Parser {
    fn lookahead(&self, ctx: Context) -> (Token, String) {
        let (t, l) = &self.items[self.pos];
        (in_context(*t, ctx), l.clone())
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let item = self.lookahead(ctx);
        // The End token is last and is never consumed past.
        self.pos = (self.pos + 1).min(self.items.len() - 1);
        item
    }

    fn parse(&mut self) -> Result<Vec<(String, LabelOp)>, String> {
        let mut requirements = Vec::new();
        loop {
            let (t, lit) = self.lookahead(Context::Values);
            match t {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, lit) = self.consume(Context::Values);
                    match t {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let (t2, lit2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{lit2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{lit}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<(String, LabelOp), String> {
        let (mut t, mut key) = self.consume(Context::Values);
        let not = t == Token::DoesNotExist;
        if not {
            (t, key) = self.consume(Context::Values);
        }
        if t != Token::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let errs = crate::admission::validation::qualified_name_errors(&key);
        if !errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {key:?}: {}",
                errs.join("; ")
            ));
        }
        if not {
            return Ok((key, LabelOp::DoesNotExist));
        }
        if matches!(self.lookahead(Context::Values).0, Token::End | Token::Comma) {
            return Ok((key, LabelOp::Exists));
        }
        let (op, lit) = self.consume(Context::KeyAndOperator);
        let values = match op {
            Token::In | Token::NotIn => self.set_values()?,
            Token::Equals
            | Token::DoubleEquals
            | Token::NotEquals
            | Token::GreaterThan
            | Token::LessThan => self.exact_value()?,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: '=', '!=', '==', 'in', notin'"
                ));
            }
        };
        // NewRequirement's checks, in its order: the operator's, then each value as a label value.
        let mut errs = Vec::new();
        let number = |v: &str| v.parse::<i64>().ok();
        if matches!(op, Token::GreaterThan | Token::LessThan) && number(&values[0]).is_none() {
            errs.push(format!(
                "values[0]: Invalid value: {:?}: for 'Gt', 'Lt' operators, the value must be an integer",
                values[0]
            ));
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = crate::admission::validation::label_value_errors(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {v:?}: {}",
                    msgs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => {}
            1 => return Err(errs.remove(0)),
            _ => return Err(format!("[{}]", errs.join(", "))),
        }
        let first = || values[0].clone();
        let op = match op {
            Token::In => LabelOp::In(values),
            Token::NotIn => LabelOp::NotIn(values),
            Token::NotEquals => LabelOp::NotEquals(first()),
            Token::GreaterThan => LabelOp::GreaterThan(number(&values[0]).unwrap_or_default()),
            Token::LessThan => LabelOp::LessThan(number(&values[0]).unwrap_or_default()),
            _ => LabelOp::Equals(first()),
        };
        Ok((key, op))
    }

    /// `(a, b)`: a sorted set, where empty entries (`()`, `(a,)`) stand for the empty value.
    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (t, lit) = self.consume(Context::Values);
        if t != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.lookahead(Context::Values);
        let mut set = std::collections::BTreeSet::new();
        match t {
            Token::Identifier | Token::Comma => {
                self.identifiers(&mut set)?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                set.insert(String::new());
            }
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
        Ok(set.into_iter().collect())
    }

    fn identifiers(&mut self, set: &mut std::collections::BTreeSet<String>) -> Result<(), String> {
        loop {
            let (t, lit) = self.consume(Context::Values);
            match t {
                Token::Identifier => {
                    set.insert(lit);
                    let (t2, lit2) = self.lookahead(Context::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(()),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            set.insert(String::new());
                            return Ok(());
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            set.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(Context::Values).0, Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume(Context::Values) {
            (Token::Identifier, lit) => Ok(vec![lit]),
            (_, lit) => Err(format!("found '{lit}', expected: identifier")),
        }
    }
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter as apimachinery's labels.Parse does, refusing what it
    /// refuses with its words.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parser = Parser {
            items: lex(s),
            pos: 0,
        };
        let requirements = parser.parse()?;
        Ok(LabelSelector { requirements })
    }

    /// A `metav1.LabelSelector` object (matchLabels and matchExpressions), as workloads carry.
    pub fn from_object(sel: &Value) -> Self {
        let mut requirements = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                requirements.push((
                    k.clone(),
                    LabelOp::Equals(v.as_str().unwrap_or_default().into()),
                ));
            }
        }
        for expr in sel["matchExpressions"].as_array().into_iter().flatten() {
            let key = expr["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = expr["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let op = match expr["operator"].as_str() {
                Some("In") => LabelOp::In(values),
                Some("NotIn") => LabelOp::NotIn(values),
                Some("Exists") => LabelOp::Exists,
                _ => LabelOp::DoesNotExist,
            };
            requirements.push((key, op));
        }
        LabelSelector { requirements }
    }

    /// A service's `spec.selector` map.
    pub fn from_map(map: &Value) -> Self {
        let requirements = map
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    LabelOp::Equals(v.as_str().unwrap_or_default().into()),
                )
            })
            .collect();
        LabelSelector { requirements }
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(k, op)| {
            let v = labels.get(k);
            match op {
                LabelOp::Equals(want) => v == Some(want),
                LabelOp::NotEquals(want) => v != Some(want),
                LabelOp::In(set) => v.is_some_and(|v| set.contains(v)),
                LabelOp::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
                LabelOp::GreaterThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                LabelOp::LessThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_labels(&labels_of(obj))
    }
}

/// A `metav1.LabelSelector` object in the text form the apiserver prints it (`labels.Selector`'s
/// String: requirements sorted by key, set values sorted), as a Scale's status.selector shows it.
pub fn selector_text(sel: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        parts.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for expr in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or_default().to_string();
        let mut values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match expr["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.clone(),
            _ => format!("!{key}"),
        };
        parts.push((key, text));
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

/// The fields a resource can be selected by. Kinds with their own field-label conversion list every field
/// they accept (not always both metadata fields); the others accept the two metadata fields, and word
/// their refusal differently.
enum Selectable {
    Own(&'static [&'static str]),
    MetadataOnly,
}

const META: &[&str] = &["metadata.name", "metadata.namespace"];

fn selectable_fields(group: &str, resource: &str, custom_resource: bool) -> Selectable {
    if custom_resource {
        // Custom resources without selectableFields: the two metadata fields, refused in the
        // apiextensions converter's words.
        return Selectable::Own(META);
    }
    Selectable::Own(match (group, resource) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "secrets") => &["type", "metadata.namespace", "metadata.name"],
        ("", "namespaces") => &["status.phase", "metadata.name"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "services") => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        ("apps", "replicasets") => &["metadata.name", "metadata.namespace", "status.replicas"],
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => return Selectable::MetadataOnly,
    })
}

/// The value a field selector compares: JSON scalars as the apiserver's field set renders them.
fn field_value(obj: &Value, field: &str) -> String {
    let v = match field {
        "source" => &obj["source"]["component"],
        // A Job's field is named for its count of succeeded pods.
        "status.successful" => &obj["status"]["succeeded"],
        _ => field.split('.').fold(obj, |v, f| &v[f]),
    };
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Unset booleans and counts select as "false" and "0", as the apiserver's field sets render them.
        Value::Null if field == "spec.hostNetwork" || field == "spec.unschedulable" => {
            "false".into()
        }
        Value::Null if field == "status.replicas" || field == "status.successful" => "0".into(),
        _ => String::new(),
    }
}

impl FieldSelector {
    pub fn parse(
        s: &str,
        group: &str,
        resource: &str,
        custom_resource: bool,
    ) -> Result<Self, String> {
        let allowed = selectable_fields(group, resource, custom_resource);
        let mut requirements = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            // Old clients still send spec.host for a pod's node.
            let field = if field == "spec.host" && resource == "pods" && group.is_empty() {
                "spec.nodeName"
            } else {
                field
            };
            match &allowed {
                Selectable::Own(fields) if !fields.contains(&field) => {
                    return Err(format!("field label not supported: {field}"));
                }
                Selectable::MetadataOnly if !META.contains(&field) => {
                    return Err(format!(
                        "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    ));
                }
                _ => {}
            }
            requirements.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements
            .iter()
            .all(|(field, eq, want)| (field_value(obj, field) == *want) == *eq)
    }

    /// The name a selector pins, if it pins exactly one (as `kubectl delete --wait` watches do).
    pub fn pinned_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_syntax() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier in (front)",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&o),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app notin (web)",
            "missing",
            "!app",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&o),
                "{s} should not match"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn selectors_print_sorted_by_key() {
        let sel = serde_json::json!({
            "matchLabels": {"tier": "web", "app": "a"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}, {"key": "zone", "operator": "DoesNotExist"}]
        });
        assert_eq!(
            selector_text(&sel),
            "app=a,env in (dev,prod),tier=web,!zone"
        );
    }

    #[test]
    fn workload_selectors() {
        let sel = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
        }));
        assert!(sel.matches(&obj(json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(&obj(json!({"app": "web"}))));
    }

    #[test]
    fn field_selectors_are_limited_per_resource() {
        let o = obj(json!({}));
        let s = FieldSelector::parse("metadata.name=p,status.phase!=Pending", "", "pods", false)
            .unwrap();
        assert!(s.matches(&o));
        assert_eq!(s.pinned_name(), Some("p"));
        assert!(
            !FieldSelector::parse("status.phase=Pending", "", "pods", false)
                .unwrap()
                .matches(&o)
        );
        assert_eq!(
            FieldSelector::parse("status.phase=Running", "", "configmaps", false).unwrap_err(),
            "\"status.phase\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let ev = json!({"involvedObject": {"name": "x", "uid": "u"}, "source": {"component": "kubelet"}});
        assert!(
            FieldSelector::parse(
                "involvedObject.name=x,involvedObject.uid=u,source=kubelet",
                "",
                "events",
                false
            )
            .unwrap()
            .matches(&ev)
        );
    }
}
