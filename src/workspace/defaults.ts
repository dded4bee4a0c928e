/**
 * Built-in exclusion lists for workspace discovery (gitignore syntax, rooted at each workspace root,
 * so a pattern without a slash matches at any depth).
 *
 * Precedence (see ignore.ts for the full rule):
 *   .gitignore chain  <  DEFAULT_EXCLUDES  <  .mplusignore chain  <  user globs
 * and SECRET_PATTERNS are applied last: a secret stays excluded whatever .gitignore, the defaults
 * or the user globs say, unless a `.mplusignore` rule re-includes *that path itself* (`!.env.test`),
 * a re-included parent directory is not enough.
 */

/** Directories and files that are never useful to feed (build output, dependencies, VCS, caches). */
export const DEFAULT_DIR_EXCLUDES: readonly string[] = [
  '.git/', '.hg/', '.svn/', '.bzr/', '_darcs/', '.jj/',
  'node_modules/', 'bower_components/', 'jspm_packages/', '.pnpm-store/', '.yarn/',
  'out/', 'dist/', 'build/', 'target/', 'bin/Debug/', 'bin/Release/', 'obj/',
  '.venv/', 'venv/', '.env/', '__pycache__/', '.mypy_cache/', '.pytest_cache/', '.ruff_cache/', '.tox/',
  '.nox/', '*.egg-info/', '.eggs/', 'site-packages/',
  '.gradle/', '.idea/', '.vs/', '.vscode-test/', '.cache/', '.parcel-cache/', '.next/', '.nuxt/',
  '.svelte-kit/', '.turbo/', '.angular/', '.terraform/', '.serverless/', '.docusaurus/',
  'coverage/', '.nyc_output/', 'htmlcov/', 'vendor/bundle/', 'Pods/', 'DerivedData/',
  'zig-cache/', 'zig-out/', '_build/', 'deps/', '.stack-work/', 'elm-stuff/', '.dart_tool/',
  'CMakeFiles/', 'cmake-build-*/', '.ccls-cache/', '.clangd/', 'bazel-*/',
];

/** Lock files and similar machine-written manifests. */
export const LOCK_FILES: readonly string[] = [
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'bun.lock',
  'Cargo.lock', 'poetry.lock', 'Pipfile.lock', 'pdm.lock', 'uv.lock', 'Gemfile.lock', 'composer.lock',
  'go.sum', 'go.work.sum', 'flake.lock', 'mix.lock', 'pubspec.lock', 'Podfile.lock', 'packages.lock.json',
  'gradle.lockfile', 'deno.lock', '*.lock',
];

/** Generated or minified files (by name; content checks live in discovery.ts). */
export const GENERATED_FILES: readonly string[] = [
  '*.min.js', '*.min.mjs', '*.min.cjs', '*.min.css', '*.bundle.js', '*.chunk.js', '*.map',
  '*.generated.*', '*.g.dart', '*.freezed.dart', '*.pb.go', '*.pb.cc', '*.pb.h', '*_pb2.py', '*_pb2_grpc.py',
  '*.designer.cs', '*.Designer.cs', '*.tsbuildinfo', '*.pyc', '*.pyo', '*.class', '*.o', '*.obj', '*.a',
  '*.so', '*.so.*', '*.dylib', '*.dll', '*.exe', '*.lib', '*.wasm', '*.node',
  '.DS_Store', 'Thumbs.db', '*.swp', '*.swo', '*~', '*.log',
];

/** Binary formats recognised by extension (content sniffing catches the rest). */
export const BINARY_EXTENSIONS: ReadonlySet<string> = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'bmp', 'ico', 'icns', 'webp', 'avif', 'tif', 'tiff', 'psd', 'heic',
  'mp3', 'mp4', 'm4a', 'wav', 'flac', 'ogg', 'opus', 'webm', 'mov', 'avi', 'mkv', 'wmv',
  'zip', 'gz', 'tgz', 'bz2', 'xz', 'zst', '7z', 'rar', 'tar', 'jar', 'war', 'ear', 'apk', 'aar', 'ipa',
  'deb', 'rpm', 'dmg', 'iso', 'img', 'msi', 'cab',
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods', 'odp',
  'ttf', 'otf', 'woff', 'woff2', 'eot',
  'exe', 'dll', 'so', 'dylib', 'a', 'o', 'obj', 'lib', 'pdb', 'class', 'pyc', 'pyo', 'wasm', 'node', 'bin',
  'dat', 'db', 'sqlite', 'sqlite3', 'mdb', 'parquet', 'arrow', 'feather', 'avro', 'orc',
  'npy', 'npz', 'pkl', 'pickle', 'pt', 'pth', 'ckpt', 'safetensors', 'onnx', 'pb', 'h5', 'hdf5', 'tflite',
  'gguf', 'ggml', 'bin', 'model', 'mlmodel',
  'blend', 'fbx', 'glb', 'gltf', 'stl', 'dwg', 'sketch', 'fig', 'xcf',
  'swf', 'flv', 'jks', 'der', 'crt', 'cer', 'p7b',
]);

/**
 * Secrets: never discovered unless `.mplusignore` re-includes the very path. Patterns without a
 * slash match at any depth.
 */
export const SECRET_PATTERNS: readonly string[] = [
  '.env', '.env.*', '*.env', '.envrc',
  '*.pem', '*.key', '*.p12', '*.pfx', '*.p8', '*.jks', '*.keystore', '*.truststore',
  '*.gpg', '*.asc', '*.kdbx', '*.ovpn',
  'id_rsa*', 'id_dsa*', 'id_ecdsa*', 'id_ed25519*', '*.ppk', 'known_hosts', 'authorized_keys',
  '.npmrc', '.yarnrc', '.yarnrc.yml', '.pypirc', '.netrc', '_netrc', '.git-credentials', '.gitcookies',
  '.dockercfg', '.docker/config.json', '.htpasswd', '.pgpass', '.my.cnf', '.s3cfg', '.boto',
  'credentials*', '*credentials.json', 'secrets.*', '*.secret', '*.secrets', 'secrets/',
  'service-account*.json', 'client_secret*.json', 'terraform.tfstate*', '*.tfvars',
  '.ssh/', '.aws/', '.gnupg/', '.azure/', '.kube/config', 'kubeconfig',
];

export const DEFAULT_EXCLUDES: readonly string[] = [
  ...DEFAULT_DIR_EXCLUDES, ...LOCK_FILES, ...GENERATED_FILES,
];

/** Names of the ignore files honoured in every directory. */
export const GITIGNORE = '.gitignore';
export const MPLUSIGNORE = '.mplusignore';

/** Limits. */
export const DEFAULT_MAX_FILES = 20000;
export const DEFAULT_MAX_BYTES = 200 * 1024 * 1024;
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
/** How much of each file is read to sniff binaries / minified / generated content. */
export const SNIFF_BYTES = 8192;
