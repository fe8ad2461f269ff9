# %%
import torch
from helper_blocks import GatedBlock

torch.manual_seed(0)
block = GatedBlock(6)

# %%
block(torch.randn(3, 6)).sum().backward()
