/*
 * A stand-in bcryptprimitives.dll for wine 8 (Debian 12), used only by
 * scripts/wine-smoke.
 *
 * Rust's standard library (1.78 and later) gets its random bytes on
 * Windows from ProcessPrng in bcryptprimitives.dll, linked at load time:
 * Windows 10 and later have it, but wine 8 has no bcryptprimitives.dll at
 * all, so every Rust program fails to start under it.
 * This DLL exports ProcessPrng and fills the buffer with RtlGenRandom
 * (advapi32's SystemFunction036), which wine has. It is put into the
 * throwaway wine prefix of the smoke test; nothing of it is shipped, and
 * on real Windows the system's DLL is used.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *        bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: ask in pieces. */
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
