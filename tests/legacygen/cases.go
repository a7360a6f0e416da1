package legacygen

// Case is a generated stream with the output options to convert it with.
// Together they cover what the shared corpus does not: XSAVE contexts
// from a 32-bit toolstack, sparse and multi-word vCPU maps, full
// 1024-page batches, batches of one page, live rounds, bare XTAB entries,
// PV libxl output, physmaps of both widths, opaque and empty toolstack
// chunks, a tail with --skip-qemu, a stream with no tail and no option.
type Case struct {
	Name     string
	Config   Config
	Format   string // output framing: "libxc" or "libxl"
	SkipQemu bool   // --skip-qemu, for both converters
	// XenArgs are arguments only Xen's converter needs (--skip-qemu for a
	// stream without a tail).
	XenArgs []string
	// Deviation, when set, says how our output deliberately differs from
	// Xen's converter's; the reference is Xen's output adjusted so.
	Deviation string
}

// DeviationEmptyPageData: Xen's converter turns a batch of bare XTAB
// entries into a PAGE_DATA record with count 0, which Xen's own restorer
// refuses ("Expected at least 1 pfn in PAGE_DATA record"); we write no
// record. The reference drops such records from Xen's output.
const DeviationEmptyPageData = "drop PAGE_DATA records with count 0"

// Cases returns the generated cases the tests check against the recorded
// output of Xen's converter (testdata/xen-reference.json, made by
// mkcases).
func Cases() []Case {
	physmap := []Physmap{
		{0xf0000000, 0xf0000000, 0x800000, "vga.vram"},
		{0xfc000000, 0xfc000000, 0x10000, "cirrus_vga.rom"},
		{0xfd000000, 0xfd000000, 0x40000, "e1000.rom"},
	}
	return []Case{
		{Name: "w32-pv32-xsave-libxl", Format: "libxl", Config: Config{Width: 32, PVGuestBits: 32, Pages: 300, Batch: 100,
			VCPUs: []int{0, 2, 5}, MaxVCPUID: 7, Extended: true, XSave: 0x340, Special: true, BareXTab: 2, Unmapped: 5, Rounds: 2, Seed: 1}},
		{Name: "w64-pv64-bigbatch-xl-libxc", Format: "libxc", Config: Config{Width: 64, Pages: 2500, Extended: true,
			VCPUs: []int{0, 1, 2, 3}, XSave: 0x440, XL: true, XLJSON: true, Rounds: 1, Unmapped: 100, TSCFirst: true, Seed: 2}},
		{Name: "w32-pv64-verify-libxc", Format: "libxc", Config: Config{Width: 32, PVGuestBits: 64, Pages: 700, VerifyMode: true,
			Special: true, Extended: true, Seed: 3}},
		{Name: "w64-pv32-xl-libxl", Format: "libxl", Config: Config{Width: 64, PVGuestBits: 32, XL: true, Pages: 1100,
			EmptyTS: true, Extended: true, Seed: 4}},
		{Name: "w64-hvm-physmap-libxl", Format: "libxl", Config: Config{Width: 64, HVM: true, Pages: 200, HVMParams: true,
			QemuTail: 5000, Toolstack: physmap[:2], Seed: 5}},
		{Name: "w32-hvm-physmap-xl-libxl", Format: "libxl", Config: Config{Width: 32, HVM: true, XL: true, Pages: 150,
			Toolstack: physmap, QemuTail: 70000, VCPUs: seq(70), ContextLen: 5000, Seed: 6}},
		{Name: "w32-hvm-opaque-ts-libxc", Format: "libxc", Config: Config{Width: 32, HVM: true, Pages: 90, OpaqueTS: 1234,
			QemuTail: 300, HVMParams: true, Seed: 7}},
		{Name: "w64-hvm-tail-skipqemu", Format: "libxc", SkipQemu: true, Config: Config{Width: 64, HVM: true, Pages: 50,
			QemuTail: 4000, Seed: 8}},
		{Name: "w64-hvm-notail-libxc", Format: "libxc", XenArgs: []string{"--skip-qemu"}, Config: Config{Width: 64, HVM: true,
			Pages: 80, TSCFirst: true, Seed: 9}},
		{Name: "w32-hvm-empty-ts-libxl", Format: "libxl", Config: Config{Width: 32, HVM: true, Pages: 64, EmptyTS: true,
			QemuTail: 100, Seed: 10}},
		{Name: "w64-hvm-tiny-batches-libxc", Format: "libxc", Config: Config{Width: 64, HVM: true, Pages: 40, Batch: 1,
			Rounds: 3, ResendEvery: 3, QemuTail: 64, Seed: 11}},
		{Name: "w64-pv64-xtab-batch-libxc", Format: "libxc", Deviation: DeviationEmptyPageData, Config: Config{Width: 64,
			Pages: 100, BareXTab: 3, EmptyXTab: true, Seed: 12}},
		{Name: "w32-pv32-xtab-batch-libxc", Format: "libxc", Deviation: DeviationEmptyPageData, Config: Config{Width: 32,
			Pages: 100, BareXTab: 1, EmptyXTab: true, Seed: 13}},
		// p2m sizes whose first two octets are gzip's magic (1f 8b).
		{Name: "w64-pv64-p2m-8b1f-libxc", Format: "libxc", Config: Config{Width: 64, Pages: 30, P2MSize: 0x8b1f, Seed: 14}},
		{Name: "w32-hvm-p2m-18b1f-libxl", Format: "libxl", Config: Config{Width: 32, HVM: true, Pages: 20, P2MSize: 0x18b1f,
			QemuTail: 5, Seed: 15}},
		{Name: "w64-hvm-p2m-108b1f-xl-libxc", Format: "libxc", Config: Config{Width: 64, HVM: true, XL: true, Pages: 20,
			P2MSize: 0x108b1f, QemuTail: 5, Seed: 16}},
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Layout returns the converter's -w and -g values for the case.
func (c Case) Layout() (width, guest string) {
	g := "pv"
	if c.Config.HVM {
		g = "hvm"
	}
	if c.Config.Width == 32 {
		return "32", g
	}
	return "64", g
}
