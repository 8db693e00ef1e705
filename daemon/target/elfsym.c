// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/elfsym.h"
#include "base/lw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lw_fsym {
	uint64_t addr;
	uint64_t size;
	const char *name;	/* points into the ELF string table */
};

struct lw_elf {
	Elf *elf;
	int fd;
	char *path;
	GElf_Ehdr ehdr;
	size_t nphdr;
	GElf_Phdr *phdr;
	int has_symtab;
	/* sorted function symbols, built on first symbolize */
	struct lw_fsym *fsyms;
	size_t nfsyms;
	int fsyms_built;
};

static int lw_elf_init(struct lw_elf *e)
{
	Elf_Scn *scn = NULL;
	size_t i;

	if (elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &e->ehdr))
		return -ENOEXEC;
	if (e->ehdr.e_ident[EI_CLASS] != ELFCLASS64)
		return -ENOEXEC;
	if (elf_getphdrnum(e->elf, &e->nphdr))
		return -ENOEXEC;
	if (e->nphdr > 4096)
		return -ENOEXEC;
	e->phdr = calloc(e->nphdr ? e->nphdr : 1, sizeof(*e->phdr));
	if (!e->phdr)
		return -ENOMEM;
	for (i = 0; i < e->nphdr; i++)
		if (!gelf_getphdr(e->elf, (int)i, &e->phdr[i]))
			return -ENOEXEC;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB && sh.sh_entsize &&
		    sh.sh_size / sh.sh_entsize > 1)
			e->has_symtab = 1;
	}
	return 0;
}

/* Largest ELF file read on a target's behalf (debug files of big libraries included). */
#define LW_ELF_MAX_SIZE (4ull << 30)

int lw_elf__open_fd(int fd, const char *name, struct lw_elf **out)
{
	struct lw_elf *e;
	struct stat st;
	int err;

	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	/* never a FIFO, device or directory a target put at a path; never a huge file */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > LW_ELF_MAX_SIZE) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		close(fd);
		return -ENOSYS;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	e->fd = fd;
	e->path = strdup(name);
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->path || !e->elf) {
		err = e->path ? -ENOEXEC : -ENOMEM;
		goto fail;
	}
	err = lw_elf_init(e);
	if (err)
		goto fail;
	*out = e;
	return 0;
fail:
	lw_elf__close(e);
	return err;
}

int lw_elf__open(const char *path, struct lw_elf **out)
{
	/* O_NONBLOCK: opening a FIFO put at the path must not wait for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	return lw_elf__open_fd(fd, path, out);
}

int lw_elf__open_mem(const void *buf, size_t len, struct lw_elf **out)
{
	struct lw_elf *e;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = -1;
	e->path = strdup("<memory>");
	e->elf = elf_memory((char *)buf, len);
	if (!e->path || !e->elf) {
		err = e->path ? -ENOEXEC : -ENOMEM;
		goto fail;
	}
	err = lw_elf_init(e);
	if (err)
		goto fail;
	*out = e;
	return 0;
fail:
	lw_elf__close(e);
	return err;
}

void lw_elf__close(struct lw_elf *e)
{
	if (!e)
		return;
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->phdr);
	free(e->fsyms);
	free(e->path);
	free(e);
}

const char *lw_elf__path(const struct lw_elf *e)
{
	return e->path;
}

Elf *lw_elf__elf(struct lw_elf *e)
{
	return e->elf;
}

int lw_elf__type(const struct lw_elf *e)
{
	return e->ehdr.e_type;
}

int lw_elf__has_symtab(const struct lw_elf *e)
{
	return e->has_symtab;
}

static Elf_Scn *find_scn_type(Elf *elf, Elf64_Word type, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, sh) && sh->sh_type == type)
			return scn;
	return NULL;
}

/* Search one symbol table. Returns 0 found, -ENOENT, -ENOTUNIQ. */
static int search_symtab(struct lw_elf *e, Elf64_Word type, const char *name, uint64_t *vaddr,
			 uint64_t *size)
{
	GElf_Shdr sh, vsh;
	Elf_Scn *scn = find_scn_type(e->elf, type, &sh);
	Elf_Scn *vscn = NULL;
	Elf_Data *data, *vdata = NULL;
	size_t i, n;
	int found = 0, found_rank = -1;
	uint64_t fa = 0, fs = 0;

	if (!scn || !sh.sh_entsize)
		return -ENOENT;
	data = elf_getdata(scn, NULL);
	if (!data)
		return -ENOENT;
	if (type == SHT_DYNSYM) {
		vscn = find_scn_type(e->elf, SHT_GNU_versym, &vsh);
		if (vscn)
			vdata = elf_getdata(vscn, NULL);
	}
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *sn;
		int rank;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		sn = elf_strptr(e->elf, sh.sh_link, sym.st_name);
		if (!sn || strcmp(sn, name))
			continue;
		/* rank: global default version > global hidden version > local/weak */
		rank = GELF_ST_BIND(sym.st_info) == STB_GLOBAL ? 2 :
		       GELF_ST_BIND(sym.st_info) == STB_WEAK ? 1 : 0;
		if (vdata) {
			GElf_Versym vs;

			if (gelf_getversym(vdata, (int)i, &vs) && (vs & 0x8000))
				rank = 0;
		}
		if (found && sym.st_value == fa)
			continue;
		if (found && rank == found_rank && rank == 2)
			return -ENOTUNIQ;
		if (!found || rank > found_rank) {
			found = 1;
			found_rank = rank;
			fa = sym.st_value;
			fs = sym.st_size;
		}
	}
	if (!found)
		return -ENOENT;
	*vaddr = fa;
	if (size)
		*size = fs;
	return 0;
}

int lw_elf__find_symbol(struct lw_elf *e, const char *name, uint64_t *vaddr, uint64_t *size)
{
	int err = search_symtab(e, SHT_SYMTAB, name, vaddr, size);

	if (err == -ENOENT)
		err = search_symtab(e, SHT_DYNSYM, name, vaddr, size);
	return err;
}

int lw_elf__vaddr_to_offset(const struct lw_elf *e, uint64_t vaddr, uint64_t *off)
{
	size_t i;

	for (i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];

		if (p->p_type != PT_LOAD)
			continue;
		if (vaddr >= p->p_vaddr && vaddr - p->p_vaddr < p->p_memsz) {
			*off = vaddr - p->p_vaddr + p->p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

int lw_elf__offset_to_vaddr(const struct lw_elf *e, uint64_t off, uint64_t *vaddr)
{
	size_t i;

	/* exact segment first, then the one whose page holds the offset (maps are page aligned) */
	for (i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];

		if (p->p_type == PT_LOAD && off >= p->p_offset && off - p->p_offset < p->p_filesz) {
			*vaddr = off - p->p_offset + p->p_vaddr;
			return 0;
		}
	}
	for (i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];
		uint64_t pg = p->p_offset & ~(uint64_t)4095;

		if (p->p_type == PT_LOAD && off >= pg && off <= p->p_offset) {
			*vaddr = p->p_vaddr - (p->p_offset - off);
			return 0;
		}
	}
	return -ENOENT;
}

int lw_elf__read(const struct lw_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	size_t i, fsize = 0;
	char *img = elf_rawfile(e->elf, &fsize);

	if (!img)
		return -EIO;
	for (i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];
		uint64_t rel;

		if (p->p_type != PT_LOAD || vaddr < p->p_vaddr)
			continue;
		rel = vaddr - p->p_vaddr;
		if (rel >= p->p_filesz || len > p->p_filesz - rel)
			continue;
		if (p->p_offset > fsize || rel + len > fsize - p->p_offset)
			return -EIO;
		memcpy(buf, img + p->p_offset + rel, len);
		return 0;
	}
	return -ENOENT;
}

int lw_elf__find_version_string(const struct lw_elf *e, const char *prefix, char *buf, size_t size)
{
	size_t fsize = 0, pl = strlen(prefix), i;
	const char *img = elf_rawfile(e->elf, &fsize);

	int pass;

	if (!img || !pl || size < 2)
		return -ENOENT;
	/* pass 0: a string of its own; pass 1: the tail of another string (linkers merge
	 * "3.8.18" into ".../versions/3.8.18") */
	for (pass = 0; pass < 2; pass++)
	for (i = 0; i + pl < fsize; i++) {
		const char *s = img + i;
		size_t j = pl, k;

		if (s[0] != prefix[0] || memcmp(s, prefix, pl))
			continue;
		if (i > 0 && s[-1] != 0 && (pass == 0 || (s[-1] >= '0' && s[-1] <= '9') ||
					    s[-1] == '.'))
			continue;
		if (i + j >= fsize || s[j] < '0' || s[j] > '9')
			continue;
		while (i + j < fsize && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.' ||
					 (s[j] >= 'a' && s[j] <= 'z') || s[j] == '+'))
			j++;
		if (i + j >= fsize || (s[j] != 0 && (s[j] != ' ' || pass)))
			continue;
		k = j < size - 1 ? j : size - 1;
		memcpy(buf, s, k);
		buf[k] = 0;
		return 0;
	}
	return -ENOENT;
}

const char *lw_elf__needed(const struct lw_elf *e, size_t idx)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_scn_type(e->elf, SHT_DYNAMIC, &sh);
	Elf_Data *data;
	size_t i, n, seen = 0;

	if (!scn || !sh.sh_entsize)
		return NULL;
	data = elf_getdata(scn, NULL);
	if (!data)
		return NULL;
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Dyn dyn;

		if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED)
			continue;
		if (seen++ == idx)
			return elf_strptr(e->elf, sh.sh_link, dyn.d_un.d_val);
	}
	return NULL;
}

int lw_elf__section(const struct lw_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(e->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		const char *sn;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sn = elf_strptr(e->elf, shstrndx, sh.sh_name);
		if (sn && strcmp(sn, name) == 0) {
			if (addr)
				*addr = sh.sh_addr;
			if (size)
				*size = sh.sh_size;
			return 0;
		}
	}
	return -ENOENT;
}

static int section_data(const struct lw_elf *e, const char *name, Elf_Data **data, GElf_Shdr *out)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(e->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(e->elf, scn))) {
		const char *sn;

		if (!gelf_getshdr(scn, out))
			continue;
		sn = elf_strptr(e->elf, shstrndx, out->sh_name);
		if (sn && strcmp(sn, name) == 0 && out->sh_type != SHT_NOBITS) {
			*data = elf_getdata(scn, NULL);
			return *data ? 0 : -ENOENT;
		}
	}
	return -ENOENT;
}

int lw_elf__build_id(const struct lw_elf *e, char *buf, size_t size)
{
	Elf_Data *data;
	GElf_Shdr sh;
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;

	if (section_data(e, ".note.gnu.build-id", &data, &sh))
		return -ENOENT;
	while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_descsz && nh.n_descsz * 2 + 1 <= size &&
		    desc_off + nh.n_descsz <= data->d_size) {
			const unsigned char *d = (const unsigned char *)data->d_buf + desc_off;
			size_t i;

			for (i = 0; i < nh.n_descsz; i++)
				snprintf(buf + 2 * i, 3, "%02x", d[i]);
			return 0;
		}
	}
	return -ENOENT;
}

int lw_elf__debuglink(const struct lw_elf *e, char *buf, size_t size)
{
	Elf_Data *data;
	GElf_Shdr sh;
	size_t n;

	if (section_data(e, ".gnu_debuglink", &data, &sh) || !data->d_size)
		return -ENOENT;
	n = strnlen(data->d_buf, data->d_size);
	if (n == data->d_size || n == 0 || n >= size)
		return -ENOENT;
	memcpy(buf, data->d_buf, n + 1);
	return 0;
}

static int fsym_cmp(const void *a, const void *b)
{
	const struct lw_fsym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int collect_funcs(struct lw_elf *e, Elf64_Word type)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_scn_type(e->elf, type, &sh);
	Elf_Data *data;
	size_t i, n;

	if (!scn || !sh.sh_entsize)
		return 0;
	data = elf_getdata(scn, NULL);
	if (!data)
		return 0;
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *sn;
		struct lw_fsym *nv;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
		    !sym.st_value)
			continue;
		sn = elf_strptr(e->elf, sh.sh_link, sym.st_name);
		if (!sn || !*sn)
			continue;
		if ((e->nfsyms & 1023) == 0) {
			nv = realloc(e->fsyms, (e->nfsyms + 1024) * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			e->fsyms = nv;
		}
		e->fsyms[e->nfsyms].addr = sym.st_value;
		e->fsyms[e->nfsyms].size = sym.st_size;
		e->fsyms[e->nfsyms].name = sn;
		e->nfsyms++;
	}
	return 0;
}

int lw_elf__symbolize(struct lw_elf *e, uint64_t vaddr, const char **name, uint64_t *off)
{
	size_t lo = 0, hi;

	if (!e->fsyms_built) {
		e->fsyms_built = 1;
		if (collect_funcs(e, SHT_SYMTAB) || collect_funcs(e, SHT_DYNSYM))
			return -ENOMEM;
		if (e->nfsyms)
			qsort(e->fsyms, e->nfsyms, sizeof(*e->fsyms), fsym_cmp);
	}
	hi = e->nfsyms;
	if (!hi)
		return -ENOENT;
	/* last symbol with addr <= vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->fsyms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	lo--;
	/* prefer a sized symbol that covers vaddr among those at the same address */
	if (e->fsyms[lo].size && vaddr - e->fsyms[lo].addr >= e->fsyms[lo].size)
		return -ENOENT;
	*name = e->fsyms[lo].name;
	*off = vaddr - e->fsyms[lo].addr;
	return 0;
}

int lw_elf__usdt(const struct lw_elf *e, const char *provider, const char *name, uint64_t *pc,
		 uint64_t *semaphore)
{
	Elf_Data *data;
	GElf_Shdr sh;
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;
	uint64_t base_addr = 0;
	int have_base = lw_elf__section(e, ".stapsdt.base", &base_addr, NULL) == 0;

	if (section_data(e, ".note.stapsdt", &data, &sh))
		return -ENOENT;
	while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *d = (const char *)data->d_buf + desc_off, *prov, *pname;
		uint64_t loc, base, sema;
		size_t left;

		if (nh.n_type != 3 || nh.n_descsz < 3 * 8 + 2 || desc_off + nh.n_descsz > data->d_size)
			continue;
		memcpy(&loc, d, 8);
		memcpy(&base, d + 8, 8);
		memcpy(&sema, d + 16, 8);
		prov = d + 24;
		left = nh.n_descsz - 24;
		if (!memchr(prov, 0, left))
			continue;
		pname = prov + strlen(prov) + 1;
		if ((size_t)(pname - prov) >= left || !memchr(pname, 0, left - (size_t)(pname - prov)))
			continue;
		if (strcmp(prov, provider) || strcmp(pname, name))
			continue;
		/* prelink adjustment: the note's base against where .stapsdt.base really is */
		if (have_base) {
			loc += base_addr - base;
			if (sema)
				sema += base_addr - base;
		}
		*pc = loc;
		*semaphore = sema;
		return 0;
	}
	return -ENOENT;
}

int lw_elf__find_pointer_to(const struct lw_elf *e, uint64_t vaddr, uint64_t *where)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Rela r;

			if (!gelf_getrela(data, (int)i, &r))
				break;
			if (GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE && (uint64_t)r.r_addend == vaddr) {
				*where = r.r_offset;
				return 0;
			}
		}
	}
	return -ENOENT;
}
