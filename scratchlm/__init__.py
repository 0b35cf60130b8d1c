__version__ = "0.0.1"

def __getattr__(name):
    "`from scratchlm import TransformerLM`: the model with its training (`fit`) and generation methods patched on."
    if name == 'TransformerLM':
        from scratchlm.model import TransformerLM
        import scratchlm.trainer, scratchlm.generation   # noqa: F401 (they patch fit/train and from_pretrained/generate onto the class)
        return TransformerLM
    raise AttributeError(f"module 'scratchlm' has no attribute {name!r}")
