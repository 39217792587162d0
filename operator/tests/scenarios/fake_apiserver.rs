//! An in-memory apiserver for scenario tests of the reconcile order: it
//! keeps objects by path, answers GET, LIST (label selectors, metadata-only
//! lists), POST, PUT, PATCH (server-side apply, JSON Patch, merge patch) and
//! DELETE with the preconditions a real one checks (resourceVersion and uid,
//! 409 on a mismatch), logs every request in order, and fails the requests a
//! test queues. What it leaves out, on purpose: field ownership (an apply
//! replaces the object; one writer per object in these scenarios), watches,
//! admission and validation. Whatever needs those runs in the integration
//! tests against a real kube-apiserver and etcd.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};

/// One request, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    /// `kinds namespace/name` (a create too: `POST secrets prod/out`),
    /// `kinds namespace/name/status`, or for a list `kinds namespace`.
    pub target: String,
}

impl Call {
    /// `PATCH secrets prod/out`: how tests write the calls they expect.
    pub fn text(&self) -> String {
        format!("{} {}", self.method, self.target)
    }

    /// A change at the apiserver (X's calls are on the timeline only).
    pub fn is_write(&self) -> bool {
        self.method != Method::GET && self.method.as_str() != "X"
    }
}

/// Where a request points: `api/v1` or `apis/GROUP/VERSION`, the plural,
/// the namespace, the name and the subresource, each when present.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Location {
    prefix: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl Location {
    fn parse(path: &str) -> Option<Location> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, rest) = match *segments.first()? {
            "api" => (segments.get(..2)?.join("/"), &segments[2..]),
            "apis" => (segments.get(..3)?.join("/"), &segments[3..]),
            _ => return None,
        };
        let owned = |i: usize| rest.get(i).map(|s| s.to_string());
        let namespaced = rest.first() == Some(&"namespaces") && rest.len() >= 3;
        Some(match namespaced {
            true => Location {
                prefix,
                plural: rest[2].to_string(),
                namespace: owned(1),
                name: owned(3),
                subresource: owned(4),
            },
            false => Location {
                prefix,
                plural: rest.first()?.to_string(),
                namespace: None,
                name: owned(1),
                subresource: owned(2),
            },
        })
    }

    /// The object this location names, without its subresource.
    fn object(&self) -> Location {
        Location {
            subresource: None,
            ..self.clone()
        }
    }

    fn describe(&self) -> String {
        let ns = self.namespace.clone().unwrap_or_default();
        match (&self.name, &self.subresource) {
            (Some(n), Some(s)) => format!("{} {ns}/{n}/{s}", self.plural),
            (Some(n), None) if ns.is_empty() => format!("{} {n}", self.plural),
            (Some(n), None) => format!("{} {ns}/{n}", self.plural),
            (None, _) => format!("{} {ns}", self.plural).trim_end().to_string(),
        }
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Location, Value>,
    log: Vec<Call>,
    failures: VecDeque<(Method, String, u16)>,
    version: u64,
}

/// The fake; clones share one state.
#[derive(Clone, Default)]
pub struct FakeApiserver {
    state: Arc<Mutex<State>>,
}

impl FakeApiserver {
    /// A kube client whose every request this fake answers.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.answer(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `object` at `path`, as if someone created it, or replaced it
    /// (keeping its uid) when it exists.
    pub fn seed(&self, path: &str, object: Value) {
        let location = Location::parse(path).expect("an API path");
        let mut state = self.state.lock().unwrap();
        let existing = state.objects.get(&location).cloned();
        let stored = state.stamp(&location, object, existing.as_ref());
        state.objects.insert(location, stored);
    }

    /// The object at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        let location = Location::parse(path).expect("an API path");
        self.state.lock().unwrap().objects.get(&location).cloned()
    }

    /// Every stored object of `plural` (`secrets`, `roles`, …), in every
    /// namespace.
    pub fn objects(&self, plural: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        let matching = state.objects.iter().filter(|(l, _)| l.plural == plural);
        matching.map(|(_, o)| o.clone()).collect()
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().log.clone()
    }

    /// The writes so far, in order, as `METHOD target` lines.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.is_write())
            .map(Call::text)
            .collect()
    }

    /// Every request so far and, between them, the X API calls a test
    /// noted (`X POST /oauth2/invalidate_token`), as `METHOD target` lines.
    pub fn timeline(&self) -> Vec<String> {
        self.calls().iter().map(Call::text).collect()
    }

    /// Puts an X API call on the timeline.
    pub fn note_x_call(&self, endpoint: &str) {
        let call = Call {
            method: Method::from_bytes(b"X").expect("a method name"),
            target: endpoint.to_string(),
        };
        self.state.lock().unwrap().log.push(call);
    }

    /// Forgets the log (the objects stay).
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// The next `method` request whose target is `target` fails with `code`.
    pub fn fail_next(&self, method: Method, target: &str, code: u16) {
        let mut state = self.state.lock().unwrap();
        state.failures.push_back((method, target.to_string(), code));
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = body.collect_bytes().await.unwrap_or_default();
        let Some(location) = Location::parse(parts.uri.path()) else {
            return status(404, "NotFound", "no such API path");
        };
        let query = parts.uri.query().unwrap_or_default().to_string();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let request = Incoming {
            method: parts.method.clone(),
            query,
            content_type: header("content-type"),
            accept: header("accept"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        // A create is logged under the name it creates.
        let named = match (&location.name, request.body["metadata"]["name"].as_str()) {
            (None, Some(name)) if parts.method == Method::POST => Location {
                name: Some(name.to_string()),
                ..location.clone()
            },
            _ => location.clone(),
        };
        let mut state = self.state.lock().unwrap();
        let call = Call {
            method: parts.method.clone(),
            target: named.describe(),
        };
        state.log.push(call.clone());
        if let Some(code) = state.queued_failure(&call) {
            return status(code, "Queued", "a failure the test queued");
        }
        state.handle(&location, request)
    }
}

struct Incoming {
    method: Method,
    query: String,
    content_type: String,
    accept: String,
    body: Value,
}

impl State {
    fn queued_failure(&mut self, call: &Call) -> Option<u16> {
        let at = self
            .failures
            .iter()
            .position(|(m, t, _)| *m == call.method && *t == call.target)?;
        self.failures.remove(at).map(|(_, _, code)| code)
    }

    fn handle(&mut self, at: &Location, request: Incoming) -> Response<Body> {
        match (request.method.clone(), &at.name) {
            (Method::GET, None) => self.list(at, &request),
            (Method::GET, Some(_)) => self.read(at, &request),
            (Method::POST, None) => self.create(at, request.body),
            (Method::PUT, Some(_)) => self.replace(at, request.body),
            (Method::PATCH, Some(_)) => self.patch(at, &request),
            (Method::DELETE, Some(_)) => self.delete(at, &request.body),
            _ => status(405, "MethodNotAllowed", "not served by the fake"),
        }
    }

    fn read(&self, at: &Location, request: &Incoming) -> Response<Body> {
        match self.objects.get(&at.object()) {
            Some(object)
                if at.subresource.is_none() || at.subresource.as_deref() == Some("status") =>
            {
                ok(metadata_only(object.clone(), &request.accept))
            }
            Some(_) => status(404, "NotFound", "no such subresource"),
            None => not_found(at),
        }
    }

    fn list(&self, at: &Location, request: &Incoming) -> Response<Body> {
        let selector = query_value(&request.query, "labelSelector");
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(l, _)| l.prefix == at.prefix && l.plural == at.plural)
            .filter(|(l, _)| at.namespace.is_none() || l.namespace == at.namespace)
            .filter(|(_, o)| selects(&selector, &o["metadata"]["labels"]))
            .map(|(_, o)| metadata_only(o.clone(), &request.accept))
            .collect();
        let kind = match request.accept.contains("as=PartialObjectMetadataList") {
            true => "PartialObjectMetadataList",
            false => "List",
        };
        ok(json!({"kind": kind, "apiVersion": "v1",
            "metadata": {"resourceVersion": self.version.to_string()}, "items": items}))
    }

    fn create(&mut self, at: &Location, body: Value) -> Response<Body> {
        let mut object = body;
        let name = match object["metadata"]["name"].as_str() {
            Some(name) => name.to_string(),
            None => {
                let base = object["metadata"]["generateName"].as_str().unwrap_or("x-");
                format!("{base}{}", self.version + 1)
            }
        };
        object["metadata"]["name"] = json!(name);
        let location = Location {
            name: Some(name),
            ..at.clone()
        };
        // Reviews are answered, never stored: everything is allowed here.
        if at.plural.ends_with("reviews") {
            object["status"] = json!({"allowed": true});
            return created(object);
        }
        if self.objects.contains_key(&location) {
            return status(409, "AlreadyExists", "already exists");
        }
        let stored = self.stamp(&location, object, None);
        self.objects.insert(location, stored.clone());
        created(stored)
    }

    fn replace(&mut self, at: &Location, body: Value) -> Response<Body> {
        let existing = self.objects.get(&at.object()).cloned();
        let Some(existing) = existing else {
            return not_found(at);
        };
        if let Some(conflict) = precondition(&existing, &body["metadata"]) {
            return conflict;
        }
        self.store(at, existing, body)
    }

    fn patch(&mut self, at: &Location, request: &Incoming) -> Response<Body> {
        let existing = self.objects.get(&at.object()).cloned();
        let patched = match (request.content_type.as_str(), existing) {
            ("application/apply-patch+yaml", existing) => {
                if let Some(conflict) = existing
                    .as_ref()
                    .and_then(|e| precondition(e, &request.body["metadata"]))
                {
                    return conflict;
                }
                let existing = existing.unwrap_or(json!({}));
                return self.store(at, existing, request.body.clone());
            }
            (_, None) => return not_found(at),
            ("application/json-patch+json", Some(existing)) => {
                let patch: json_patch::Patch = match serde_json::from_value(request.body.clone()) {
                    Ok(p) => p,
                    Err(e) => return status(400, "BadRequest", &e.to_string()),
                };
                let mut object = existing.clone();
                if json_patch::patch(&mut object, &patch).is_err() {
                    return status(422, "Invalid", "the JSON Patch does not apply");
                }
                object
            }
            (_, Some(existing)) => {
                if let Some(conflict) = precondition(&existing, &request.body["metadata"]) {
                    return conflict;
                }
                let mut object = existing.clone();
                json_patch::merge(&mut object, &request.body);
                object
            }
        };
        let existing = self.objects[&at.object()].clone();
        self.store(at, existing, patched)
    }

    fn delete(&mut self, at: &Location, body: &Value) -> Response<Body> {
        let Some(existing) = self.objects.get(&at.object()) else {
            return not_found(at);
        };
        let preconditions = &body["preconditions"];
        let mismatch = |field: &str| {
            preconditions[field].is_string() && preconditions[field] != existing["metadata"][field]
        };
        if mismatch("uid") || mismatch("resourceVersion") {
            return status(409, "Conflict", "the precondition failed");
        }
        let gone = self.objects.remove(&at.object());
        ok(gone.unwrap_or(Value::Null))
    }

    /// Writes `new` over `existing`: the whole object, or only its status
    /// for the status subresource (and never the status otherwise, as for
    /// every kind with a status subresource).
    fn store(&mut self, at: &Location, existing: Value, new: Value) -> Response<Body> {
        let mut object = existing.clone();
        match at.subresource.as_deref() {
            Some("status") => object["status"] = new["status"].clone(),
            Some(_) => return status(404, "NotFound", "no such subresource"),
            None => {
                let kept_status = existing.get("status").cloned();
                object = new;
                match kept_status {
                    Some(s) if at.plural != "secrets" => object["status"] = s,
                    _ => {}
                }
            }
        }
        let stored = self.stamp(&at.object(), object, Some(&existing));
        self.objects.insert(at.object(), stored.clone());
        ok(stored)
    }

    /// Fills what the apiserver owns: name and namespace from the path,
    /// uid and creation time (kept from `existing`), a new resourceVersion,
    /// and a generation that grows when the spec changes.
    fn stamp(&mut self, at: &Location, mut object: Value, existing: Option<&Value>) -> Value {
        self.version += 1;
        let before = existing.map(|e| &e["metadata"]);
        let meta = &mut object["metadata"];
        meta["name"] = json!(at.name);
        if let Some(ns) = &at.namespace {
            meta["namespace"] = json!(ns);
        }
        meta["resourceVersion"] = json!(self.version.to_string());
        let uid = before
            .and_then(|b| b["uid"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("uid-{}", self.version));
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = before
            .map(|b| b["creationTimestamp"].clone())
            .unwrap_or(json!("2026-01-01T00:00:00Z"));
        let generation = before.and_then(|b| b["generation"].as_i64()).unwrap_or(1);
        let spec_changed = existing.is_some_and(|e| e["spec"] != object["spec"]);
        object["metadata"]["generation"] = json!(generation + i64::from(spec_changed));
        object
    }
}

/// A 409 when `meta` names a resourceVersion or uid other than `existing`'s.
fn precondition(existing: &Value, meta: &Value) -> Option<Response<Body>> {
    let differs =
        |field: &str| meta[field].is_string() && meta[field] != existing["metadata"][field];
    (differs("resourceVersion") || differs("uid"))
        .then(|| status(409, "Conflict", "the object has been modified"))
}

/// A metadata-only answer when the client asked for one.
fn metadata_only(object: Value, accept: &str) -> Value {
    if !accept.contains("as=PartialObjectMetadata") {
        return object;
    }
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": object["metadata"].clone()})
}

/// Whether `labels` match a selector of `k=v`, `k==v`, `k!=v`, `k` and `!k`
/// terms.
fn selects(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let label = |key: &str| labels[key.trim()].as_str().map(str::to_string);
        if let Some((k, v)) = term.split_once("!=") {
            return label(k).as_deref() != Some(v.trim());
        }
        if let Some((k, v)) = term.split_once('=') {
            return label(k).as_deref() == Some(v.trim_start_matches('=').trim());
        }
        match term.strip_prefix('!') {
            Some(k) => label(k).is_none(),
            None => label(term).is_some(),
        }
    })
}

fn query_value(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .unwrap_or_default()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ok(object: Value) -> Response<Body> {
    respond(StatusCode::OK, object)
}

fn created(object: Value) -> Response<Body> {
    respond(StatusCode::CREATED, object)
}

fn not_found(at: &Location) -> Response<Body> {
    status(404, "NotFound", &format!("{} not found", at.describe()))
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    respond(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_object() {
        let cases = [
            ("/api/v1/namespaces/prod/secrets/out", "secrets prod/out"),
            ("/api/v1/namespaces/prod/secrets", "secrets prod"),
            ("/api/v1/secrets", "secrets"),
            ("/api/v1/namespaces/prod", "namespaces prod"),
            (
                "/apis/keyguard.dev/v1alpha1/namespaces/team/twittercredentials/bot/status",
                "twittercredentials team/bot/status",
            ),
        ];
        for (path, described) in cases {
            assert_eq!(
                Location::parse(path).unwrap().describe(),
                described,
                "{path}"
            );
        }
    }

    #[test]
    fn selectors_match_as_the_apiserver_does() {
        let labels = json!({"app": "bot", "tier": "x"});
        let cases = [
            ("", true),
            ("app=bot", true),
            ("app==bot,tier=x", true),
            ("app=other", false),
            ("app!=bot", false),
            ("missing", false),
            ("!missing", true),
            ("app", true),
        ];
        for (selector, matches) in cases {
            assert_eq!(selects(selector, &labels), matches, "{selector}");
        }
    }
}
