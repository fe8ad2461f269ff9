# %%
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class Backbone(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c2 = nn.Conv2d(3, ch, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.c4 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        c2 = self.c2(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        return [c2, c3, c4]


class FPN(nn.Module):
    def __init__(self, ch, out_ch):
        super().__init__()
        self.lateral_convs = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(ch, out_ch, 1), nn.ReLU()) for _ in range(3)]
        )
        self.fpn_convs = nn.ModuleList([nn.Conv2d(out_ch, out_ch, 3, padding=1) for _ in range(3)])

    def forward(self, inputs):
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] += F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        return [conv(lat) for conv, lat in zip(self.fpn_convs, laterals, strict=True)]


backbone, neck = Backbone(4), FPN(4, 4)

# %%
outs = neck(backbone(torch.randn(1, 3, 32, 32)))
sum(o.mean() for o in outs).backward()
