# The devices the vmd_rs test machines use (allnoconfig-style: every
# device needs its own line).
CONFIG_Q35=y
CONFIG_PCIE_PORT=y
CONFIG_NVME_PCI=y
CONFIG_VTD=y
CONFIG_INTEL_VMD=y
# What virtme-ng's guests need
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_9P=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SCSI=y
CONFIG_VIRTIO_BALLOON=y
CONFIG_I6300ESB=y
# Without these the 10.x link fails
CONFIG_SPDM_SOCKET=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
