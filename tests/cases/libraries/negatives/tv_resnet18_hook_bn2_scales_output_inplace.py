# %%
import torch
import torch.nn.functional as F
import torchvision

torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None, num_classes=10)


def damp_residual_branch(module, inputs, output):
    output.mul_(0.5)


for block in model.layer1:
    block.bn2.register_forward_hook(damp_residual_branch)

# %%
images = torch.randn(2, 3, 32, 32)
labels = torch.tensor([1, 7])
loss = F.cross_entropy(model(images), labels)
loss.backward()
