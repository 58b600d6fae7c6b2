//! Model configuration as found in a Hugging Face model directory.

use serde::{Deserialize, Serialize};

/// The fields of a BERT `config.json` that the encoder needs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size (rows of the word embedding table).
    pub vocab_size: usize,
    /// Hidden width (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; `hidden_size` must divide evenly.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence the position table covers.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Epsilon of every LayerNorm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    /// Activation of the feed-forward layer; only exact "gelu" is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not supported (only \"gelu\")", self.hidden_act));
        }
        Ok(())
    }
}

/// sentence-transformers' `sentence_bert_config.json`: how long inputs may be.
#[derive(Debug, Clone, Deserialize)]
pub struct SentenceConfig {
    /// Tokens kept per text (special tokens included); longer texts are truncated.
    pub max_seq_length: usize,
}

/// sentence-transformers' `1_Pooling/config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolingConfig {
    /// Mean over the non-padding tokens; the only mode the encoder implements.
    #[serde(default)]
    pub pooling_mode_mean_tokens: bool,
    /// The [CLS] token's vector.
    #[serde(default)]
    pub pooling_mode_cls_token: bool,
    /// Max over tokens.
    #[serde(default)]
    pub pooling_mode_max_tokens: bool,
}
