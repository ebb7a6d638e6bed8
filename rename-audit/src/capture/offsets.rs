//! Kernel struct field offsets, read from the running kernel's BTF so the
//! kernel programs never hard-code a layout.
use btf_rs::{Btf, Type};
use rename_audit_common::KernelOffsets;

/// The `pt_regs` field that holds the syscall number.
#[cfg(target_arch = "x86_64")]
const SYSCALL_NR_FIELD: &str = "orig_ax";
#[cfg(target_arch = "aarch64")]
const SYSCALL_NR_FIELD: &str = "syscallno";

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(
        "kernel BTF is not available at {VMLINUX_BTF} ({0}); rename-audit needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    Unreadable(String),
    #[error("kernel BTF has no struct {0}; this kernel is not supported")]
    UnknownStruct(&'static str),
    #[error("kernel BTF has no field {0}.{1}; this kernel is not supported")]
    UnknownField(&'static str, &'static str),
}

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), read into memory
/// once. Parsing it from the file makes btf-rs seek (one syscall) for every
/// type it skips: tens of thousands of syscalls, seconds under qemu.
pub fn read_running_kernel_btf() -> Result<Vec<u8>, OffsetsError> {
    std::fs::read(VMLINUX_BTF).map_err(|e| OffsetsError::Unreadable(e.to_string()))
}

/// Parses the running kernel's BTF for the offsets and the hook probes.
pub fn parse(raw: &[u8]) -> Result<Btf, OffsetsError> {
    Btf::from_bytes(raw).map_err(|e| OffsetsError::Unreadable(e.to_string()))
}

/// Reads and parses the running kernel's BTF.
#[cfg(test)]
pub fn running_kernel_btf() -> Result<Btf, OffsetsError> {
    parse(&read_running_kernel_btf()?)
}

/// Reads the offsets the kernel programs need from the kernel's BTF.
pub fn from_btf(btf: &Btf) -> Result<KernelOffsets, OffsetsError> {
    let task = Layout::find(btf, "task_struct")?;
    let mm = Layout::find(btf, "mm_struct")?;
    let regs = Layout::find(btf, "pt_regs")?;
    let signal = Layout::find(btf, "signal_struct")?;
    let file = Layout::find(btf, "file")?;
    let path = Layout::find(btf, "path")?;
    let inode = Layout::find(btf, "inode")?;
    let sb = Layout::find(btf, "super_block")?;
    let dentry = Layout::find(btf, "dentry")?;
    let qstr = Layout::find(btf, "qstr")?;
    let hlist_bl = Layout::find(btf, "hlist_bl_node")?;
    let mount = Layout::find(btf, "mount")?;
    let vfsmount = Layout::find(btf, "vfsmount")?;
    let css_set = Layout::find(btf, "css_set")?;
    let cgroup = Layout::find(btf, "cgroup")?;
    let kernfs_node = Layout::find(btf, "kernfs_node")?;
    let nsproxy = Layout::find(btf, "nsproxy")?;
    let mnt_ns = Layout::find(btf, "mnt_namespace")?;
    let ns_common = Layout::find(btf, "ns_common")?;
    Ok(KernelOffsets {
        task_pid: task.offset("pid")?,
        task_tgid: task.offset("tgid")?,
        task_comm: task.offset("comm")?,
        task_flags: task.offset("flags")?,
        task_group_leader: task.offset("group_leader")?,
        task_real_parent: task.offset("real_parent")?,
        task_start_boottime: task.offset("start_boottime")?,
        task_mm: task.offset("mm")?,
        mm_arg_start: mm.offset("arg_start")?,
        mm_arg_end: mm.offset("arg_end")?,
        regs_syscall_nr: regs.offset(SYSCALL_NR_FIELD)?,
        task_signal: task.offset("signal")?,
        signal_live: signal.offset("live")?,
        mm_exe_file: mm.offset("exe_file")?,
        file_path_mnt: file.offset("f_path")? + path.offset("mnt")?,
        file_path_dentry: file.offset("f_path")? + path.offset("dentry")?,
        file_inode: file.offset("f_inode")?,
        inode_ino: inode.offset("i_ino")?,
        inode_sb: inode.offset("i_sb")?,
        sb_dev: sb.offset("s_dev")?,
        dentry_parent: dentry.offset("d_parent")?,
        dentry_name: dentry.offset("d_name")? + qstr.offset("name")?,
        dentry_hash_pprev: dentry.offset("d_hash")? + hlist_bl.offset("pprev")?,
        mount_mnt: mount.offset("mnt")?,
        mount_parent: mount.offset("mnt_parent")?,
        mount_mountpoint: mount.offset("mnt_mountpoint")?,
        vfsmount_root: vfsmount.offset("mnt_root")?,
        task_cgroups: task.offset("cgroups")?,
        css_set_dfl_cgrp: css_set.offset("dfl_cgrp")?,
        cgroup_kn: cgroup.offset("kn")?,
        kernfs_node_id: kernfs_node.offset("id")?,
        kernfs_node_name: kernfs_node.offset("name")?,
        // Renamed when it became RCU-protected (Linux 6.15).
        kernfs_node_parent: kernfs_node
            .offset("parent")
            .or_else(|_| kernfs_node.offset("__parent"))?,
        // Filled from tracefs by the capture, when the mount hooks attach.
        syscall_exit_ret: 0,
        task_nsproxy: task.offset("nsproxy")?,
        nsproxy_mnt_ns: nsproxy.offset("mnt_ns")?,
        mnt_ns_inum: mnt_ns.offset("ns")? + ns_common.offset("inum")?,
        // Added with fanotify's mount events (Linux 6.15); never at offset
        // 0 (the namespace's `ns_common` is there), so 0 means "absent".
        mnt_ns_fsnotify_mask: mnt_ns.offset("n_fsnotify_mask").unwrap_or(0),
    })
}

struct Layout<'a> {
    btf: &'a Btf,
    name: &'static str,
    ty: btf_rs::Struct,
}

impl<'a> Layout<'a> {
    fn find(btf: &'a Btf, name: &'static str) -> Result<Self, OffsetsError> {
        btf.resolve_types_by_name(name)
            .map_err(|_| OffsetsError::UnknownStruct(name))?
            .into_iter()
            .find_map(|t| match t {
                // Forward declarations share the name; only a struct with
                // members is the definition.
                Type::Struct(s) if !s.members.is_empty() => Some(s),
                _ => None,
            })
            .map(|ty| Self { btf, name, ty })
            .ok_or(OffsetsError::UnknownStruct(name))
    }

    /// Byte offset of `field`, looking through anonymous structs and unions
    /// (randomized or grouped layouts put fields inside them).
    fn offset(&self, field: &'static str) -> Result<u32, OffsetsError> {
        find_member(self.btf, &self.ty, field, 0)
            .map(|bits| bits / 8)
            .ok_or(OffsetsError::UnknownField(self.name, field))
    }
}

/// Whether `struct_name` has `member`, looking through anonymous structs and
/// unions as [`from_btf`] does.
pub fn has_member(btf: &Btf, struct_name: &str, member: &str) -> bool {
    btf.resolve_types_by_name(struct_name)
        .unwrap_or_default()
        .iter()
        .any(|t| match t {
            Type::Struct(s) => find_member(btf, s, member, 0).is_some(),
            _ => false,
        })
}

fn find_member(btf: &Btf, ty: &btf_rs::Struct, field: &str, base_bits: u32) -> Option<u32> {
    for member in &ty.members {
        let bits = base_bits + member.bit_offset();
        let name = btf.resolve_name(member).unwrap_or_default();
        if name == field {
            return Some(bits);
        }
        if name.is_empty()
            && let Ok(Type::Struct(inner) | Type::Union(inner)) = btf.resolve_chained_type(member)
            && let Some(found) = find_member(btf, &inner, field, bits)
        {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_has_every_field() {
        let btf = running_kernel_btf().expect("this machine's kernel has BTF");
        let offsets = from_btf(&btf).expect("every field is there");
        // pid and tgid are adjacent pid_t fields in every kernel layout.
        assert_eq!(offsets.task_tgid, offsets.task_pid + 4);
        assert!(offsets.mm_arg_end > offsets.mm_arg_start);
        assert!(offsets.task_comm > 0 && offsets.task_group_leader > 0);
        // signal_struct starts with sigcnt, then live (both atomic_t).
        assert_eq!(offsets.signal_live, 4);
    }
}
