# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = self.encoder(x)
        h += 1.0
        return self.head(h)


model = Net()
grad_norms = []
model.encoder.register_full_backward_hook(lambda m, gin, gout: grad_norms.append(gout[0].norm()))

# %%
model(torch.randn(3, 6)).sum().backward()
