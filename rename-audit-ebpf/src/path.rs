//! The executable of a task, named by walking its dentries and mounts.
//! `bpf_d_path` is not allowed in tracepoint programs, so this is what
//! d_path does, with a bounded loop: every symlink is already resolved (the
//! names are the file's own), and a file with no name left is marked
//! deleted, as /proc/<pid>/exe shows it.
use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_kernel_str};
use rename_audit_common::{
    CGROUP_PATH_DEPTH, CGROUP_PATH_LEN, EXE_PATH_DEPTH, EXE_PATH_LEN, ExecRecord, NAME_LEN,
    exe_flags,
};

use crate::{
    setting,
    task::{Task, load, load_ptr},
};

/// Mounts stacked on one another that one step climbs at most.
const MOUNT_HOPS: u32 = 8;

#[inline(always)]
unsafe fn field<T>(base: *const u8, offset: u32) -> Option<T> {
    if base.is_null() {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one fails.
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T).ok() }
}

#[inline(always)]
unsafe fn pointer(base: *const u8, offset: u32) -> Option<*const u8> {
    // SAFETY: as in `field`.
    unsafe { field::<*const u8>(base, offset) }.filter(|p| !p.is_null())
}

/// `task->mm->exe_file`, a BTF pointer.
#[inline(always)]
pub fn exe_file(task: Task) -> Option<*const u8> {
    // SAFETY: a BTF pointer from the task; the offset from BTF.
    unsafe { load_ptr(task.mm()?, setting!(offsets.mm_exe_file)) }
}

/// Whether a dentry has lost its name: unhashed and not a root (d_unlinked).
/// Reads through `bpf_probe_read_kernel`, as the walk below needs: its
/// dentries come from `struct mount`, which the verifier cannot type.
#[inline(always)]
fn unlinked(dentry: *const u8) -> bool {
    // SAFETY: reads through bpf_probe_read_kernel only.
    unsafe {
        let pprev = field::<u64>(dentry, setting!(offsets.dentry_hash_pprev));
        let parent = pointer(dentry, setting!(offsets.dentry_parent));
        pprev == Some(0) && parent.is_some_and(|p| p != dentry)
    }
}

/// Whether the file `task` runs has been deleted since it was opened: as
/// [`unlinked`], with direct loads, every pointer here being a BTF one.
#[inline(always)]
pub fn exe_deleted(task: Task) -> bool {
    let Some(file) = exe_file(task) else {
        return false;
    };
    // SAFETY: BTF pointers walked from the task; offsets from BTF.
    unsafe {
        let Some(dentry) = load_ptr(file, setting!(offsets.file_path_dentry)) else {
            return false;
        };
        let pprev = load::<u64>(dentry, setting!(offsets.dentry_hash_pprev));
        let parent = load_ptr(dentry, setting!(offsets.dentry_parent));
        pprev == 0 && parent.is_some_and(|p| p != dentry)
    }
}

/// Fills the executable fields of `rec` from `task`'s `mm->exe_file`.
/// `rec.exe_path` must be zeroed.
#[inline(always)]
pub fn fill_exe(task: Task, rec: &mut ExecRecord) {
    rec.exe_dev = 0;
    rec.exe_ino = 0;
    rec.exe_path_len = 0;
    rec.exe_flags = match walk(task, rec) {
        Some(flags) => flags,
        None => exe_flags::UNREADABLE,
    };
}

#[inline(always)]
fn walk(task: Task, rec: &mut ExecRecord) -> Option<u32> {
    let file = exe_file(task)?;
    // SAFETY: every read below goes through bpf_probe_read_kernel; the
    // only writes are into `rec.exe_path`, at an offset masked below
    // EXE_PATH_LEN with NAME_LEN bytes of room after it.
    unsafe {
        // BTF pointers: loaded directly.
        if let Some(inode) = load_ptr(file, setting!(offsets.file_inode)) {
            rec.exe_ino = load::<u64>(inode, setting!(offsets.inode_ino));
            if let Some(sb) = load_ptr(inode, setting!(offsets.inode_sb)) {
                rec.exe_dev = u64::from(load::<u32>(sb, setting!(offsets.sb_dev)));
            }
        }
        // From here on through `bpf_probe_read_kernel`: a dentry may come
        // from a `struct mount`, which is reached by `container_of` from
        // its `vfsmount`, and the verifier types neither.
        let mut dentry = pointer(file, setting!(offsets.file_path_dentry))?;
        let vfsmount = pointer(file, setting!(offsets.file_path_mnt))?;
        // container_of(vfsmount, struct mount, mnt)
        let mut mnt = vfsmount.sub(setting!(offsets.mount_mnt) as usize);
        let mut flags = if unlinked(dentry) {
            exe_flags::DELETED
        } else {
            0
        };
        let mut len: u32 = 0;
        let mut done = false;
        // Each turn adds exactly one component, so every path through the
        // body reaches the next turn in the same state and the verifier
        // prunes them (a turn that may or may not add one would double the
        // states each time).
        'walk: for _ in 0..EXE_PATH_DEPTH {
            // At the top of a mount, go on from where it is mounted, until
            // the root of the mount tree.
            for _ in 0..MOUNT_HOPS {
                let root = pointer(
                    mnt,
                    setting!(offsets.mount_mnt) + setting!(offsets.vfsmount_root),
                )?;
                if dentry != root {
                    break;
                }
                let up = pointer(mnt, setting!(offsets.mount_parent))?;
                if up == mnt {
                    done = true;
                    break 'walk;
                }
                dentry = pointer(mnt, setting!(offsets.mount_mountpoint))?;
                mnt = up;
            }
            let parent = pointer(dentry, setting!(offsets.dentry_parent))?;
            if dentry == parent {
                // The root of a file system that is mounted nowhere (a
                // memfd's, or one whose mount was detached).
                done = true;
                break;
            }
            if len as usize >= EXE_PATH_LEN {
                break;
            }
            let name = pointer(dentry, setting!(offsets.dentry_name))?;
            len = append_name(&mut rec.exe_path, len, name)?;
            dentry = parent;
        }
        if !done || len as usize > EXE_PATH_LEN {
            flags |= exe_flags::TRUNCATED;
        }
        rec.exe_path_len = filled(&rec.exe_path, len);
        Some(flags)
    }
}

/// Fills the cgroup fields of `rec` from `task`'s cgroup (v2): the names of
/// its kernfs nodes up to the root. `rec.cgroup_path` must be zeroed.
#[inline(always)]
pub fn fill_cgroup(task: Task, rec: &mut ExecRecord) {
    rec.cgroup_path_len = 0;
    rec.cgroup_path_truncated = 0;
    let _ = walk_cgroup(task, rec);
}

#[inline(always)]
fn walk_cgroup(task: Task, rec: &mut ExecRecord) -> Option<()> {
    let mut kn = task.cgroup_node()?;
    let mut len: u32 = 0;
    // SAFETY: kernfs nodes are BTF pointers, loaded directly; names are
    // copied by bpf_probe_read_kernel_str into `rec.cgroup_path` at an
    // offset masked below CGROUP_PATH_LEN, with NAME_LEN bytes of room
    // after it.
    unsafe {
        for _ in 0..CGROUP_PATH_DEPTH {
            // The root's name is empty: stop at the node without a parent.
            let Some(parent) = load_ptr(kn, setting!(offsets.kernfs_node_parent)) else {
                rec.cgroup_path_len = len;
                return Some(());
            };
            if len as usize >= CGROUP_PATH_LEN {
                break;
            }
            let name = load_ptr(kn, setting!(offsets.kernfs_node_name))?;
            len = append_name(&mut rec.cgroup_path, len, name)?;
            kn = parent;
        }
        rec.cgroup_path_truncated = 1;
        rec.cgroup_path_len = filled(&rec.cgroup_path, len);
    }
    Some(())
}

/// Appends the NUL-terminated kernel string `name` (a path component) to
/// `buf` at `len`, which the caller keeps below `N - NAME_LEN` (the path's
/// room; the last NAME_LEN bytes of `buf` are scratch space for the
/// kernel's write). Returns the length after it (the NUL included), or
/// `None` when the name cannot be read. Both walks' loops call it once a
/// turn, so each turn's verifier state stays what it was when the copy was
/// written out in each of them.
///
/// The offset is masked with `N - NAME_LEN - 1`, which tells the verifier
/// the write stays inside `buf`; with `N - NAME_LEN` a power of two (as
/// both paths' room is) the mask changes no offset below it.
#[inline(always)]
fn append_name<const N: usize>(buf: &mut [u8; N], len: u32, name: *const u8) -> Option<u32> {
    const { assert!(N > NAME_LEN) };
    let room = N - NAME_LEN;
    let at = (len as usize) & (room - 1);
    // SAFETY: `at` is below `room`, so NAME_LEN bytes from it are inside
    // `buf`; the kernel string is read by bpf_probe_read_kernel_str, which
    // checks the address and writes at most NAME_LEN bytes.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            buf.as_mut_ptr().add(at).cast(),
            NAME_LEN as u32,
            name.cast(),
        )
    };
    if n <= 0 {
        return None;
    }
    // n is at most NAME_LEN; the mask tells the verifier so.
    Some(len + ((n as u32) & ((NAME_LEN as u32 - 1) | NAME_LEN as u32)))
}

/// The valid length of a path of `len` bytes in `buf`: `len`, which a
/// last name may have taken past the path's room but never past `N`
/// (said so for the verifier).
#[inline(always)]
fn filled<const N: usize>(_buf: &[u8; N], len: u32) -> u32 {
    if (len as usize) < N { len } else { N as u32 }
}
