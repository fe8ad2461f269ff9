# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.proj = nn.Conv2d(ch, ch, kernel_size=3, padding=1, bias=False)  # 3x3, same width
        self.act = nn.ReLU()

    def forward(self, h):
        out = self.proj(h)  # the block's branch
        h += out  # residual sum
        return self.act(h)


model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8))

# %%
x = torch.randn(2, 3, 8, 8)
model(x).sum().backward()
