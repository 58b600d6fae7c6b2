//! Text to token ids, as sentence-transformers does it.
//!
//! A model's `tokenizer.json` may carry its own padding and truncation (all-MiniLM-L6-v2's
//! pads to 128 and truncates at 128). sentence-transformers ignores both: it truncates at
//! `max_seq_length` and pads only within a batch. We do the same, and never pad: each text
//! is encoded on its own, so no compute is spent on padding.

use crate::error::{Error, Result};
use tokenizers::{PaddingParams, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// A WordPiece tokenizer configured for sentence embedding.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` bytes and sets truncation at `max_len` tokens, no padding.
    pub fn from_bytes(json: &[u8], max_len: usize) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        inner.with_padding(None::<PaddingParams>);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(format!("truncation at {max_len}: {e}")))?;
        Ok(TextTokenizer { inner, max_len })
    }

    /// Token ids of `text`, with [CLS] and [SEP], at most `max_len` of them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The truncation length in tokens.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}
