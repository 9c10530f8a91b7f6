//! A small JSON Schema validator for the subset an OpenAPI 3.0 document uses: `$ref` (local
//! pointers such as `#/components/schemas/User`), `type` with `nullable`, `enum`,
//! `properties`, `required`, `additionalProperties`, `items`, `allOf`, `minLength`,
//! `maxLength`, `minimum`, `maximum`. Annotations (`description`, `format`, `default`, ...)
//! are ignored; any other keyword is reported, so a document cannot rely on a rule that is
//! not checked.

use serde_json::Value;

/// Keywords that only describe.
const ANNOTATIONS: &[&str] = &["description", "format", "default", "title", "example", "deprecated", "readOnly"];

/// Keywords this validator enforces.
const CHECKED: &[&str] = &[
    "$ref",
    "type",
    "nullable",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "allOf",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
];

/// Validates instances against schemas of one document (which `$ref`s point into).
pub struct Validator<'d> {
    doc: &'d Value,
}

impl<'d> Validator<'d> {
    pub fn new(doc: &'d Value) -> Validator<'d> {
        Validator { doc }
    }

    /// The value a local reference (`#/a/b`) points at.
    pub fn pointer(&self, reference: &str) -> Option<&'d Value> {
        reference.strip_prefix('#').and_then(|p| self.doc.pointer(p))
    }

    /// Follows `$ref` until a value without one.
    pub fn resolve<'v>(&self, mut value: &'v Value) -> Result<&'v Value, String>
    where
        'd: 'v,
    {
        for _ in 0..32 {
            match value.get("$ref") {
                Some(Value::String(r)) => {
                    value = self.pointer(r).ok_or_else(|| format!("unresolvable $ref {r}"))?;
                }
                Some(other) => return Err(format!("$ref must be a string, not {other}")),
                None => return Ok(value),
            }
        }
        Err("$ref cycle".into())
    }

    /// Every violation of `schema` by `instance`, each with its JSON path; empty when valid.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, instance, "$", &mut errors);
        errors
    }

    /// Keywords in `schema` (and the schemas it contains or references) that this validator
    /// does not know; empty when the schema is within the checked subset.
    pub fn unsupported(&self, schema: &Value) -> Vec<String> {
        let mut found = Vec::new();
        let mut seen = Vec::new();
        self.lint(schema, "$", &mut found, &mut seen);
        found
    }

    fn lint(&self, schema: &Value, at: &str, found: &mut Vec<String>, seen: &mut Vec<String>) {
        let Some(map) = schema.as_object() else {
            found.push(format!("{at}: a schema must be an object"));
            return;
        };
        for (key, value) in map {
            let here = format!("{at}.{key}");
            match key.as_str() {
                "$ref" => match value.as_str() {
                    Some(r) if seen.iter().any(|s| s == r) => {}
                    Some(r) => {
                        seen.push(r.to_owned());
                        match self.pointer(r) {
                            Some(target) => self.lint(target, r, found, seen),
                            None => found.push(format!("{here}: unresolvable {r}")),
                        }
                    }
                    None => found.push(format!("{here}: not a string")),
                },
                "properties" => match value.as_object() {
                    Some(props) => {
                        for (name, sub) in props {
                            self.lint(sub, &format!("{here}.{name}"), found, seen);
                        }
                    }
                    None => found.push(format!("{here}: not an object")),
                },
                "items" => self.lint(value, &here, found, seen),
                "additionalProperties" if !value.is_boolean() => self.lint(value, &here, found, seen),
                "allOf" => match value.as_array() {
                    Some(parts) => {
                        for (i, sub) in parts.iter().enumerate() {
                            self.lint(sub, &format!("{here}[{i}]"), found, seen);
                        }
                    }
                    None => found.push(format!("{here}: not an array")),
                },
                "type" => {
                    if !matches!(value.as_str(), Some("string" | "integer" | "number" | "boolean" | "array" | "object"))
                    {
                        found.push(format!("{here}: unknown type {value}"));
                    }
                }
                k if CHECKED.contains(&k) || ANNOTATIONS.contains(&k) => {}
                other => found.push(format!("{at}: unsupported keyword {other}")),
            }
        }
    }

    fn check(&self, schema: &Value, instance: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = match self.resolve(schema) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                return;
            }
        };
        let Some(map) = schema.as_object() else {
            errors.push(format!("{at}: the schema is not an object"));
            return;
        };
        for key in map.keys() {
            if !CHECKED.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
                errors.push(format!("{at}: the schema uses unsupported keyword {key}"));
            }
        }
        if let Some(parts) = map.get("allOf").and_then(Value::as_array) {
            for part in parts {
                self.check(part, instance, at, errors);
            }
        }
        let nullable = map.get("nullable").and_then(Value::as_bool).unwrap_or(false);
        if instance.is_null() {
            // In OpenAPI 3.0 a typed schema admits null only when nullable; an untyped one
            // admits anything.
            if map.contains_key("type") && !nullable {
                errors.push(format!("{at}: null is not allowed"));
            }
            return;
        }
        if let Some(want) = map.get("type").and_then(Value::as_str) {
            let ok = match want {
                "string" => instance.is_string(),
                "integer" => instance.is_i64() || instance.is_u64(),
                "number" => instance.is_number(),
                "boolean" => instance.is_boolean(),
                "array" => instance.is_array(),
                "object" => instance.is_object(),
                _ => false,
            };
            if !ok {
                errors.push(format!("{at}: expected {want}, got {}", short(instance)));
                return;
            }
        }
        if let Some(values) = map.get("enum").and_then(Value::as_array)
            && !values.contains(instance)
        {
            errors.push(format!("{at}: {} is not one of {}", short(instance), Value::Array(values.clone())));
        }
        if let Some(s) = instance.as_str() {
            let len = s.chars().count() as u64;
            if map.get("minLength").and_then(Value::as_u64).is_some_and(|min| len < min) {
                errors.push(format!("{at}: string shorter than minLength"));
            }
            if map.get("maxLength").and_then(Value::as_u64).is_some_and(|max| len > max) {
                errors.push(format!("{at}: string longer than maxLength"));
            }
        }
        if let Some(n) = instance.as_f64() {
            if map.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min) {
                errors.push(format!("{at}: {n} is below the minimum"));
            }
            if map.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max) {
                errors.push(format!("{at}: {n} is above the maximum"));
            }
        }
        if let Some(items) = instance.as_array()
            && let Some(item_schema) = map.get("items")
        {
            for (i, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
        if let Some(object) = instance.as_object() {
            let props = map.get("properties").and_then(Value::as_object);
            if let Some(required) = map.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        errors.push(format!("{at}: missing required property {name}"));
                    }
                }
            }
            for (name, value) in object {
                let here = format!("{at}.{name}");
                match props.and_then(|p| p.get(name)) {
                    Some(sub) => self.check(sub, value, &here, errors),
                    None => match map.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{here}: property not allowed")),
                        Some(Value::Bool(true)) | None => {}
                        Some(sub) => self.check(sub, value, &here, errors),
                    },
                }
            }
        }
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}...", text.chars().take(80).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Validator;

    #[test]
    fn the_subset_is_enforced() {
        let doc = json!({ "components": { "schemas": {
            "Item": {
                "type": "object",
                "required": ["id", "tag"],
                "properties": {
                    "id": { "type": "integer", "minimum": 0 },
                    "tag": { "type": "string", "nullable": true, "maxLength": 3 },
                    "kind": { "type": "string", "enum": ["a", "b"] },
                    "any": { "nullable": true }
                },
                "additionalProperties": false
            },
            "List": { "type": "array", "items": { "$ref": "#/components/schemas/Item" } }
        }}});
        let v = Validator::new(&doc);
        let list = json!({ "$ref": "#/components/schemas/List" });
        assert!(v.validate(&list, &json!([{ "id": 1, "tag": null, "any": [1] }, { "id": 2, "tag": "x" }])).is_empty());
        for bad in [
            json!([{ "id": -1, "tag": "x" }]),
            json!([{ "id": 1 }]),
            json!([{ "id": 1, "tag": "long" }]),
            json!([{ "id": 1, "tag": "x", "kind": "c" }]),
            json!([{ "id": 1, "tag": "x", "extra": true }]),
            json!([{ "id": "1", "tag": "x" }]),
            json!({}),
            json!(null),
        ] {
            assert!(!v.validate(&list, &bad).is_empty(), "{bad} should not validate");
        }
        assert!(v.unsupported(&list).is_empty());
        assert_eq!(v.unsupported(&json!({ "type": "string", "pattern": "^a" })).len(), 1);
        assert!(!v.validate(&json!({ "$ref": "#/components/schemas/Nope" }), &json!(1)).is_empty());
        let all =
            json!({ "allOf": [{ "$ref": "#/components/schemas/Item" }, { "properties": { "id": { "enum": [7] } } }] });
        assert!(v.validate(&all, &json!({ "id": 7, "tag": "x" })).is_empty());
        assert!(!v.validate(&all, &json!({ "id": 8, "tag": "x" })).is_empty());
    }
}
