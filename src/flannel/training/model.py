"""The notebooks' GPT-2 and its initialisation, plus a digest of the whole model state."""

from __future__ import annotations

import hashlib

import torch
from transformers import GPT2Config, GPT2LMHeadModel

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def gpt2_config(model: dict, tied: bool) -> GPT2Config:
    return GPT2Config(
        vocab_size=model["vocab_size"],
        n_positions=model["n_positions"],
        n_embd=model["n_embd"],
        n_layer=model["n_layer"],
        n_head=model["n_head"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=tied,
        bos_token_id=None,  # GPT-2's 50256 lies outside a small vocabulary; nothing here generates text
        eos_token_id=None,
        # As the Trainer sets it for training. With a cache, the forward pass concatenates K and V into fresh
        # contiguous tensors, and the attention backward then hands MKL operands of another memory layout than
        # the Trainer's run does: a different summation order, so other bits.
        use_cache=False,
        attn_implementation=model["attention"],
    )


def build_model(model: dict, tied: bool, seed: int, dtype: torch.dtype) -> GPT2LMHeadModel:
    """GPT-2 with its own init under `seed` (seeded right before it is built, so no RNG state leaks in from
    earlier work in the process), cast to `dtype`; then E (and, untied, W) get the same N(0, init_scale^2)
    draw from a fresh generator seeded with `seed`, made in float32 on the CPU and rounded to `dtype`."""
    torch.manual_seed(seed)
    net = GPT2LMHeadModel(gpt2_config(model, tied)).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    init = torch.randn(model["vocab_size"], model["n_embd"], dtype=torch.float32, generator=generator)
    init = (init * model["init_scale"]).to(dtype)
    with torch.no_grad():
        embedding_E(net).copy_(init)
        if not tied:
            unembedding_W(net).copy_(init)
    assert (embedding_E(net) is unembedding_W(net)) == tied
    return net


def embedding_E(net: GPT2LMHeadModel) -> torch.nn.Parameter:
    return net.transformer.wte.weight


def unembedding_W(net: GPT2LMHeadModel) -> torch.nn.Parameter:
    return net.lm_head.weight


def state_sha256(net: torch.nn.Module) -> str:
    """SHA-256 over every tensor of the state dict (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def parameter_counts(net: GPT2LMHeadModel) -> dict[str, int]:
    total = sum(p.numel() for p in net.parameters())
    E, W = embedding_E(net), unembedding_W(net)
    embeddings = E.numel() + (0 if E is W else W.numel())
    return {"total": total, "embedding_E": E.numel(), "unembedding_W": W.numel(), "other": total - embeddings}


class HMeanHook:
    """h_mean: the final LayerNorm's output (transformer.ln_f, the h that meets W in the logits) averaged over
    batch and positions, kept from the latest forward pass of `net`, the module that computes the gradients.
    That output is float32 on the fast path (the fp32 working copy) and bfloat16 on the faithful path (the
    bf16 model itself); either is widened exactly to float32 and averaged in float32. The hook only reads a
    detached output, so the forward and backward pass, and every other recorded byte, are as without it."""

    def __init__(self, net: GPT2LMHeadModel):
        self.value: torch.Tensor | None = None  # None until the first forward pass
        net.transformer.ln_f.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output: torch.Tensor) -> None:
        self.value = output.detach().to(torch.float32).mean(dim=(0, 1))
