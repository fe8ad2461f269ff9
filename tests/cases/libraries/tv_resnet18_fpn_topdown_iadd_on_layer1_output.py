# %%
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class TinyFPN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18(weights=None)
        self.reduce = nn.Conv2d(128, 64, kernel_size=1)
        self.head = nn.Conv2d(64, 1, kernel_size=3, padding=1)

    def forward(self, x):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        c2 = b.layer1(x)
        c3 = b.layer2(c2)
        top = F.interpolate(self.reduce(c3), size=c2.shape[-2:], mode="nearest")
        c2 += top
        return self.head(c2), c3


torch.manual_seed(0)
model = TinyFPN()

# %%
images = torch.randn(2, 3, 64, 64)
heatmap, c3 = model(images)
loss = heatmap.pow(2).mean() + c3.mean()
loss.backward()
