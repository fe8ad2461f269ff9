# %%
import timm
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = timm.create_model("resnet10t", pretrained=False, num_classes=4)

# %%
images = torch.randn(2, 3, 64, 64)
labels = torch.tensor([0, 3])
valid = torch.ones(2, 1, 2, 2)
valid[1, :, :, 1] = 0
features = model.forward_features(images)
features.mul_(valid)
logits = model.forward_head(features)
loss = F.cross_entropy(logits, labels)
loss.backward()
