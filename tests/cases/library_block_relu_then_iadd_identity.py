# %%
import torch
import torch.nn as nn
from helper_resblocks import BasicBlock

torch.manual_seed(0)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(4), BasicBlock(4))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        return self.fc(x.mean((2, 3)))


model = Classifier()

# %%
model(torch.randn(2, 3, 8, 8)).sum().backward()
