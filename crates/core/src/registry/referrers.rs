use berth_oci::manifest;
use berth_oci::media_type::ManifestKind;
use berth_oci::{Digest, Reference, RepositoryName, Tag};

use super::Registry;
use crate::Result;
use crate::ports::Referrer;

/// The manifests that refer to a subject.
#[derive(Debug, Clone)]
pub struct Referrers {
    pub referrers: Vec<Referrer>,
    /// An `artifactType` filter was applied.
    pub filtered: bool,
}

impl Registry {
    /// Manifests in `name` whose subject is `subject`: those pushed with a `subject` field,
    /// plus those listed in the `<alg>-<hex>` tag that clients without the referrers API
    /// maintain, so referrers recorded either way are found.
    pub async fn referrers(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers> {
        let limit = self.config.referrers_limit;
        let mut referrers = self.meta.referrers(name, subject, artifact_type, limit).await?;
        for found in self.fallback_tag_referrers(name, subject).await? {
            let wanted = artifact_type.is_none_or(|t| found.artifact_type.as_deref() == Some(t));
            if wanted && referrers.len() < limit as usize && !referrers.iter().any(|r| r.digest == found.digest) {
                referrers.push(found);
            }
        }
        Ok(Referrers { referrers, filtered: artifact_type.is_some() })
    }

    async fn fallback_tag_referrers(&self, name: &RepositoryName, subject: &Digest) -> Result<Vec<Referrer>> {
        // The tag schema truncates the algorithm to 32 and the encoded part to 64 characters.
        let algorithm = subject.algorithm().as_str();
        let hex = subject.hex();
        let tag = format!("{}-{}", &algorithm[..algorithm.len().min(32)], &hex[..hex.len().min(64)]);
        let Ok(tag) = Tag::parse(&tag) else { return Ok(Vec::new()) };
        let Some(index) = self.cached_manifest(name, &Reference::Tag(tag)).await? else {
            return Ok(Vec::new());
        };
        let Ok(parsed) = manifest::parse(&index.bytes, Some(&index.media_type)) else {
            return Ok(Vec::new());
        };
        if parsed.kind != ManifestKind::Index {
            return Ok(Vec::new());
        }
        Ok(parsed
            .children
            .into_iter()
            .map(|d| Referrer {
                digest: d.digest,
                media_type: d.media_type,
                size: d.size,
                artifact_type: d.artifact_type,
                annotations: d.annotations,
            })
            .collect())
    }
}
