# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.shortcut_conv = nn.Conv2d(ch, ch, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, h):
        s = self.shortcut_conv(h)
        out = self.act(h)
        return self.conv(out) + s


class Encoder(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.block1 = nn.Conv2d(3, ch, 3, padding=1)
        self.block2 = Block(ch)

    def forward(self, x):
        return self.block2(self.block1(x) * 1.0)


model = nn.Sequential()
model.encoder = Encoder(8)

# %%
x = torch.randn(1, 3, 8, 8)
model(x).sum().backward()
