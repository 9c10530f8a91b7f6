use std::sync::Arc;

use berth_oci::manifest::{self, MAX_MANIFEST_SIZE, ManifestError};
use berth_oci::{Algorithm, Digest, Reference, RepositoryName, Tag, media_type};
use bytes::Bytes;

use super::Registry;
use crate::access::Actor;
use crate::ports::{ManifestRecord, NewManifest};
use crate::tenancy::audit;
use crate::time::now_ms;
use crate::{Error, Result};

/// The outcome of a manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// Every tag now pointing at the manifest.
    pub tags: Vec<Tag>,
}

impl Registry {
    /// The manifest `reference` names, if the client's `Accept` values allow its type.
    pub async fn manifest<'a>(
        &self,
        name: &RepositoryName,
        reference: &Reference,
        accept: impl IntoIterator<Item = &'a str>,
    ) -> Result<Arc<ManifestRecord>> {
        let found = self.cached_manifest(name, reference).await?;
        let Some(found) = found else {
            return Err(Error::ManifestUnknown(format!("manifest {reference} is not known in {name}")));
        };
        if !media_type::accepts(accept, &found.media_type) {
            return Err(Error::ManifestUnknown(format!(
                "manifest {reference} is a {}, which the request's Accept header does not allow",
                found.media_type
            )));
        }
        Ok(found)
    }

    pub(super) async fn cached_manifest(
        &self,
        name: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<Arc<ManifestRecord>>> {
        let key = reference.to_string();
        self.manifest_cache
            .get_or_load(&self.generations, name.as_str(), &key, async {
                Ok(self.meta.manifest(name, reference).await?.map(Arc::new))
            })
            .await
    }

    /// Stores a manifest under `reference` (and any extra tags) after checking that it
    /// parses, that a digest reference matches its bytes, and (in the store's transaction)
    /// that everything it references is in the repository.
    pub async fn push_manifest(
        &self,
        name: &RepositoryName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        bytes: Bytes,
        actor: &Actor,
    ) -> Result<PushedManifest> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(Error::TooLarge(format!("manifest is larger than {MAX_MANIFEST_SIZE} bytes")));
        }
        let parsed = manifest::parse(&bytes, content_type).map_err(|e| match e {
            ManifestError::Schema1 => Error::ManifestInvalid(e.to_string()),
            ManifestError::Invalid(msg) => Error::ManifestInvalid(msg),
        })?;
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), &bytes);
                if &actual != expected {
                    return Err(Error::DigestInvalid(format!("manifest digest is {actual}, not {expected}")));
                }
                actual
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
        };
        let mut tags: Vec<Tag> = Vec::with_capacity(extra_tags.len() + 1);
        if let Reference::Tag(tag) = reference {
            tags.push(tag.clone());
        }
        for tag in extra_tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        let blobs = parsed
            .config
            .iter()
            .chain(&parsed.layers)
            .filter(|d| d.must_be_present())
            .map(|d| (d.digest.clone(), d.size))
            .collect();
        let children = parsed.children.iter().map(|d| d.digest.clone()).collect();
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
        let annotations = parsed.annotations.as_ref().map(|a| serde_json::Value::Object(a.clone()).to_string());
        let tag_names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        let push_audit = audit(
            actor,
            "push",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(serde_json::json!({ "digest": digest.as_str(), "tags": tag_names })),
        );
        self.meta
            .commit_manifest(&NewManifest {
                repository: name.clone(),
                digest: digest.clone(),
                media_type: parsed.media_type,
                artifact_type: parsed.artifact_type,
                subject: subject.clone(),
                annotations,
                bytes,
                blobs,
                children,
                tags: tags.clone(),
                now: now_ms(),
                creator: actor.principal.clone(),
                audit: push_audit,
            })
            .await?;
        self.changed(name.as_str()).await;
        Ok(PushedManifest { digest, subject, tags })
    }

    /// Deletes a manifest (by digest, with every tag on it) or just a tag.
    pub async fn delete_manifest(&self, name: &RepositoryName, reference: &Reference, actor: &Actor) -> Result<()> {
        let (action, field) = match reference {
            Reference::Digest(_) => ("delete_manifest", "digest"),
            Reference::Tag(_) => ("delete_tag", "tag"),
        };
        let entry = audit(
            actor,
            action,
            Some(name.namespace()),
            Some(name.as_str()),
            Some(serde_json::json!({ field: reference.to_string() })),
        );
        let deleted = match reference {
            Reference::Digest(digest) => self.meta.delete_manifest(name, digest, &entry).await?,
            Reference::Tag(tag) => self.meta.delete_tag(name, tag, now_ms(), &entry).await?,
        };
        if !deleted {
            return Err(Error::ManifestUnknown(format!("manifest {reference} is not known in {name}")));
        }
        self.changed(name.as_str()).await;
        Ok(())
    }
}
