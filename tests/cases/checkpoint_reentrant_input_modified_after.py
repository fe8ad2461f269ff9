# %%
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

torch.manual_seed(0)
block = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 4))
proj = nn.Linear(4, 4)

# %%
h = proj(torch.randn(2, 4))
out = checkpoint(block, h, use_reentrant=True)
h.mul_(0.5)
(out.sum() + h.sum()).backward()
