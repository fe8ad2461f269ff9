# %%
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)

encoder = DDP(
    nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(inplace=True), nn.Linear(32, 16)),
    broadcast_buffers=True,
)
opt = torch.optim.SGD(encoder.parameters(), lr=0.05)

# %%
torch.manual_seed(1 + rank)
for _ in range(2):
    x = torch.randn(32, 8)
    z1 = encoder(x + 0.1 * torch.randn_like(x))
    z2 = encoder(x + 0.1 * torch.randn_like(x))
    loss = -F.cosine_similarity(z1, z2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

# %%
dist.destroy_process_group()
