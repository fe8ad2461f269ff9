# %%
import torch
import torch.nn as nn

x = torch.randn(2, 4, 8, 8)
out = nn.Conv2d(4, 8, 3, padding=1)(x)
out += x
