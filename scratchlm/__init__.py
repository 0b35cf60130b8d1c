"""scratchlm: a transformer language model written from scratch in PyTorch, taught in notebooks.

`import scratchlm` gives the public API below. The modules are exported from the notebooks in `nbs/`;
this file, written by hand, only gathers their public names. Importing the trainer and generation modules
here also completes `TransformerLM` with the methods they add (`fit`/`train(train_data=...)`, `evaluate`,
`from_pretrained`, `save_pretrained`, `generate`, `stream`), whichever scratchlm module a program imports
first.
"""
__version__ = "0.0.1"

from .core import (Config, ConfigError, DataConfig, DistributedConfig, ModelConfig, TokenizerConfig,
                   TrainingConfig, bf16_is_fast, config_from_dict, cpu_has_native_bf16, corpus_entropy, count_parameters, cpu_info,
                   get_device, resolve_precision, load_config, seed_everything, stories)
from .tokenizer import (BPETokenizer, CharTokenizer, SentencePieceTokenizer, Tokenizer, TokenizerFileError,
                        TokenizerWriteError, load_tokenizer, train_tokenizer)
from .attention import MultiHeadAttention, StaticKVCache, attend
from .model import LMOutput, TransformerLM, chunked_lm_loss
from .checkpoint import CheckpointError, CheckpointWriteError, load_checkpoint
from .data import (DataError, DocumentDataset, StreamingTokenDataset, TokenDataset, download, prepare,
                   read_documents, write_documents)
from .trainer import Built, MuonWithAdamW, NonFiniteLoss, RunRefused, Trainer, TrainingInterrupted, build_training
from .generation import SamplingConfig, StaticCache, decode_steps
from .hf import load_gpt2, load_gpt2_tokenizer, save_gpt2, save_gpt2_tokenizer
from .lora import LoRALinear, add_lora, merge_lora
from .distributed import init_distributed, wrap_model

__all__ = [
    # configuration, devices, the built-in corpus (00_core)
    'Config', 'ModelConfig', 'TokenizerConfig', 'DataConfig', 'TrainingConfig', 'DistributedConfig',
    'ConfigError', 'load_config', 'config_from_dict', 'seed_everything', 'get_device', 'bf16_is_fast', 'cpu_has_native_bf16', 'resolve_precision',
    'cpu_info',
    'count_parameters', 'stories', 'corpus_entropy',
    # tokenizers (01_tokenizer)
    'Tokenizer', 'BPETokenizer', 'CharTokenizer', 'SentencePieceTokenizer', 'TokenizerFileError',
    'train_tokenizer', 'load_tokenizer', 'TokenizerWriteError',
    # attention and the model (02_attention, 03_blocks)
    'attend', 'MultiHeadAttention', 'StaticKVCache', 'TransformerLM', 'LMOutput', 'chunked_lm_loss',
    # data (04_data) and checkpoints (04b_checkpoint)
    'DataError', 'read_documents', 'write_documents', 'prepare', 'TokenDataset', 'DocumentDataset',
    'StreamingTokenDataset', 'download', 'CheckpointError', 'load_checkpoint', 'CheckpointWriteError',
    # training (05_trainer, 06_distributed)
    'Trainer', 'build_training', 'Built', 'MuonWithAdamW', 'init_distributed', 'wrap_model',
    'RunRefused', 'TrainingInterrupted', 'NonFiniteLoss',
    # generation (07_generation)
    'SamplingConfig', 'decode_steps', 'StaticCache',
    # Hugging Face GPT-2 folders and tokenizer files (07c_huggingface)
    'load_gpt2', 'save_gpt2', 'load_gpt2_tokenizer', 'save_gpt2_tokenizer',
    # fine-tuning with LoRA adapters (07b_finetuning)
    'LoRALinear', 'add_lora', 'merge_lora',
]
