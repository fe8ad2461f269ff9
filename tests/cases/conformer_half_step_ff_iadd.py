# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim)
        )

    def forward(self, x):
        return self.net(x)


class ConformerBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ff1 = FeedForward(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.ff2 = FeedForward(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h):
        h += 0.5 * self.ff1(h)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = h + 0.5 * self.ff2(h)
        return self.norm(h)


class Encoder(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.embed = nn.Linear(vocab, dim)
        self.blocks = nn.ModuleList([ConformerBlock(dim) for _ in range(2)])

    def forward(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return h


model = Encoder(6, 8)

# %%
feats = torch.randn(2, 5, 6)
model(feats).pow(2).mean().backward()
