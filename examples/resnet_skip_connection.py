# %%
# A pre-activation residual network whose in-place ReLU breaks a skip connection.
# Run: inplace-magic check examples/resnet_skip_connection.py
import torch
import torch.nn as nn

torch.manual_seed(0)


class PreActBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.shortcut = nn.Conv2d(channels, channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h):
        s = self.shortcut(h)
        out = self.act(h)
        return self.conv(out) + s


class Encoder(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.block1 = PreActBlock(channels)
        self.block2 = PreActBlock(channels)

    def forward(self, x):
        return self.block2(self.block1(self.stem(x)))


# %%
model = Encoder()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
images = torch.randn(4, 3, 16, 16)

# %%
optimizer.zero_grad()
loss = model(images).pow(2).mean()
loss.backward()
optimizer.step()
