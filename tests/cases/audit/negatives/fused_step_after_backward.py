# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 1))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)

# %%
for _step in range(3):
    loss = model(torch.randn(8, 6)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()  # after the backward that read the saved weights: the usual order, no hazard
