"""Models for the benchmarks, each with an in-place bug placed early so backward runs almost to the
end before it fails (the worst case for the replay), plus their healthy twins."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn


class PreActBlock(nn.Module):
    def __init__(self, channels: int, buggy: bool) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(channels, channels, 1)
        self.act = nn.ReLU(inplace=buggy)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(h)  # saves h; an in-place act then breaks the skip
        return self.conv(self.act(h)) + s


class ResNetish(nn.Module):
    def __init__(self, channels: int, blocks: int, buggy: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[PreActBlock(channels, buggy and i == 0) for i in range(blocks)])
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, buggy: bool) -> None:
        super().__init__()
        self.heads, self.buggy = heads, buggy
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5).softmax(-1)
        if self.buggy:
            attn.masked_fill_(torch.isnan(attn), 0.0)  # writes the softmax output softmax saved
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, dim: int, heads: int, buggy: bool) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, buggy)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, dim: int, heads: int, layers: int, seq: int, buggy: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, dim)
        self.layers = nn.Sequential(*[Layer(dim, heads, buggy and i == 0) for i in range(layers)])
        self.head = nn.Linear(dim, 1000)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.embed(tokens)))


def make_model(name: str, buggy: bool) -> tuple[nn.Module, torch.Tensor]:
    """One benchmark model and its input; ``-tiny`` names the overhead-bound sizes (the GPU regime)."""
    torch.manual_seed(0)
    tiny = name.endswith("tiny")
    if name.startswith("resnet"):
        model: nn.Module = ResNetish(4 if tiny else 64, 8, buggy)
        return model, torch.randn(1 if tiny else 8, 3, 4 if tiny else 32, 4 if tiny else 32)
    dim, seq = (16, 4) if tiny else (256, 128)
    model = Transformer(dim, 4 if tiny else 8, 4, seq, buggy)
    return model, torch.randint(0, 1000, (1 if tiny else 8, seq))


# the body of a training step, as a notebook cell writes it (``model`` and ``data`` in its namespace)
STEP_CELL = "model.zero_grad(set_to_none=True)\nmodel(data).float().pow(2).mean().backward()\n"


def make_step(name: str, buggy: bool) -> Callable[[], None]:
    """A training step (forward + backward) of one benchmark model; raises when ``buggy``."""
    model, data = make_model(name, buggy)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(data).float().pow(2).mean().backward()

    return step


def synthetic(ops: int) -> Callable[[], None]:
    """A long chain of tiny ops after an in-place write that breaks a branch saved at the start."""
    torch.manual_seed(0)
    x = torch.randn(4, requires_grad=True)
    w = torch.randn(4, requires_grad=True)

    def step() -> None:
        h = x * 1.0
        s = h * w  # saves h for w's gradient ...
        h.relu_()  # ... which is overwritten here
        y = h
        for _ in range(max(ops // 2 - 6, 1)):
            y = y * 1.0001 + 0.0001
        (y + s).sum().backward()  # the branches merge after the chain

    return step
