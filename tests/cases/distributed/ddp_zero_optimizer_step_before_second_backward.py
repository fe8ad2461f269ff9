# %%
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)

critic = DDP(nn.Sequential(nn.Linear(6, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 1)))
opt = ZeroRedundancyOptimizer(critic.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3)

# %%
torch.manual_seed(1 + rank)
states = torch.randn(32, 6)
returns = torch.randn(32, 1)
values = critic(states)
value_loss = (values - returns).pow(2).mean()
advantage_penalty = values.pow(2).mean()

opt.zero_grad()
value_loss.backward(retain_graph=True)
opt.step()
advantage_penalty.backward()

# %%
dist.destroy_process_group()
