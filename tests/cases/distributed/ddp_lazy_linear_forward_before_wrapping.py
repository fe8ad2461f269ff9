# %%
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(rank)

net = nn.Sequential(nn.LazyLinear(32), nn.Tanh(), nn.LazyLinear(1))
loss_fn = nn.MSELoss()


def batch(n=32):
    x = torch.randn(n, 12)
    return x, x[:, :1] * 2.0


# %%
x, y = batch()
loss = loss_fn(net(x), y)
model = DDP(net)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
loss.backward()
opt.step()

for _ in range(3):
    x, y = batch()
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()

# %%
dist.destroy_process_group()
