//! Globs on names and paths, matched against raw bytes: the allow-lists,
//! the thread-rename filter and `search` all use them.
use globset::{Candidate, GlobBuilder, GlobMatcher};

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PatternError(#[from] globset::Error);

/// A compiled glob, matched against raw bytes. `{a,b}` alternates (empty
/// ones too) and `\` escapes work in both kinds.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    path: bool,
    matcher: GlobMatcher,
}

impl Pattern {
    /// A glob on paths: `*` and `?` stop at `/`, `**` crosses directories.
    pub fn path(glob: &str) -> Result<Pattern, PatternError> {
        Pattern::build(glob, true)
    }

    /// A glob on names (task names, unit names): `*` matches any bytes,
    /// `/` included, so `kworker/*` works.
    pub fn name(glob: &str) -> Result<Pattern, PatternError> {
        Pattern::build(glob, false)
    }

    fn build(glob: &str, path: bool) -> Result<Pattern, PatternError> {
        let matcher = GlobBuilder::new(glob)
            .literal_separator(path)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()?
            .compile_matcher();
        Ok(Pattern {
            source: glob.to_owned(),
            path,
            matcher,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, bytes: &[u8]) -> bool {
        self.matcher
            .is_match_candidate(&Candidate::from_bytes(bytes))
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.path == other.path
    }
}

impl Eq for Pattern {}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.source)
    }
}
