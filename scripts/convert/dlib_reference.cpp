// dlib_reference: ground-truth face pipeline, identical to face_recognition 1.3.0
// (face_recognition.face_encodings with its defaults: HOG detector, upsample 1,
// 5-point "small" landmarks, num_jitters=1, chip size 150, padding 0.25).
//
// Built by scripts/convert/dlib_resnet.py:
//   g++ -O2 -std=c++14 dlib_reference.cpp $(pkg-config --cflags --libs dlib-1) -o dlib_reference
//
// Usage:
//   dlib_reference --sp shape_predictor_5_face_landmarks.dat \
//                  --net dlib_face_recognition_resnet_model_v1.dat \
//                  [--chip-dir DIR] [--upsample N] IMAGE...
//
// Prints one JSON object per line per image (see print_* below and the README
// text in dlib_resnet.py for the field meanings). With --chip-dir, each face's
// 150x150 aligned chip is written losslessly as DIR/<image index>_<face index>.png.
// Exit status is 1 if any image could not be processed (its line then has "error").
//
// Pipeline (mirrors dlib's python bindings used by face_recognition):
//   1. load_image -> matrix<rgb_pixel> (libjpeg / libpng via dlib)
//   2. frontal face detector on pyramid_up(img) (pyramid_down<2>), adjust_threshold 0,
//      rects mapped back with pyr.rect_down(rect, upsample)       [run_detector_with_upscale1]
//   3. shape_predictor (5 points) on the ORIGINAL image with that rect
//   4. extract_image_chip(img, get_face_chip_details(shape, 150, 0.25), chip) (bilinear)
//   5. ResNet (anet_type, same as dnn_face_recognition_ex.cpp) -> 128 floats

#include <dlib/dnn.h>
#include <dlib/image_io.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace dlib;

// ---- network type: keep identical to dlib_dump.cpp ----
template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual = add_prev1<block<N,BN,1,tag1<SUBNET>>>;

template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block  = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>;

template <int N, typename SUBNET> using ares      = relu<residual<block,N,affine,SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block,N,affine,SUBNET>>;

template <typename SUBNET> using alevel0 = ares_down<256,SUBNET>;
template <typename SUBNET> using alevel1 = ares<256,ares<256,ares_down<256,SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128,ares<128,ares_down<128,SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64,ares<64,ares<64,ares_down<64,SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32,ares<32,ares<32,SUBNET>>>;

using anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<
                            alevel0<
                            alevel1<
                            alevel2<
                            alevel3<
                            alevel4<
                            max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,
                            input_rgb_image_sized<150>
                            >>>>>>>>>>>>;
// --------------------------------------------------------

static std::string json_str(const std::string& s)
{
    std::string o = "\"";
    for (unsigned char c : s)
    {
        switch (c)
        {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
                else o += (char)c;
        }
    }
    return o + "\"";
}

static std::string num(double v)
{
    char b[64];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
}

static void usage()
{
    std::cerr << "usage: dlib_reference --sp SHAPE_PREDICTOR_5.dat --net RESNET.dat "
                 "[--chip-dir DIR] [--upsample N] IMAGE...\n";
}

int main(int argc, char** argv)
{
    std::string sp_path, net_path, chip_dir;
    unsigned int upsample = 1;
    std::vector<std::string> images;
    for (int i = 1; i < argc; ++i)
    {
        std::string a = argv[i];
        auto need = [&](const char* name) -> std::string {
            if (i + 1 >= argc) { std::cerr << name << " needs a value\n"; usage(); std::exit(2); }
            return argv[++i];
        };
        if (a == "--sp") sp_path = need("--sp");
        else if (a == "--net") net_path = need("--net");
        else if (a == "--chip-dir") chip_dir = need("--chip-dir");
        else if (a == "--upsample") upsample = std::stoul(need("--upsample"));
        else if (a == "-h" || a == "--help") { usage(); return 0; }
        else if (a.size() > 1 && a[0] == '-' && a != "-") { std::cerr << "unknown option " << a << "\n"; usage(); return 2; }
        else images.push_back(a);
    }
    if (sp_path.empty() || net_path.empty() || images.empty()) { usage(); return 2; }

    frontal_face_detector detector = get_frontal_face_detector();
    shape_predictor sp;
    anet_type net;
    try
    {
        deserialize(sp_path) >> sp;
        deserialize(net_path) >> net;
    }
    catch (std::exception& e)
    {
        std::cerr << "dlib_reference: loading models failed: " << e.what() << "\n";
        return 1;
    }

    int status = 0;
    for (size_t ii = 0; ii < images.size(); ++ii)
    {
        const std::string& path = images[ii];
        std::ostringstream js;
        try
        {
            matrix<rgb_pixel> img;
            load_image(img, path);

            // --- detection, exactly like dlib's python run_detector_with_upscale1 ---
            pyramid_down<2> pyr;
            std::vector<rect_detection> dets;
            if (upsample == 0)
            {
                detector(img, dets, 0.0);
            }
            else
            {
                array2d<rgb_pixel> temp;
                pyramid_up(img, temp, pyr);
                for (unsigned int l = 1; l < upsample; ++l)
                    pyramid_up(temp);
                detector(temp, dets, 0.0);
                for (auto& d : dets)
                    d.rect = pyr.rect_down(d.rect, upsample);
            }

            js << "{\"path\":" << json_str(path)
               << ",\"width\":" << img.nc() << ",\"height\":" << img.nr()
               << ",\"faces\":[";
            for (size_t fi = 0; fi < dets.size(); ++fi)
            {
                const rectangle r = dets[fi].rect;
                full_object_detection shape = sp(img, r);
                chip_details cd = get_face_chip_details(shape, 150, 0.25);
                matrix<rgb_pixel> chip;
                extract_image_chip(img, cd, chip);
                matrix<float,0,1> desc = net(chip);
                point_transform_affine to_chip = get_mapping_to_chip(cd);

                std::string chip_path;
                if (!chip_dir.empty())
                {
                    chip_path = chip_dir + "/" + std::to_string(ii) + "_" + std::to_string(fi) + ".png";
                    save_png(chip, chip_path);
                }

                if (fi) js << ",";
                js << "{\"rect\":{\"left\":" << r.left() << ",\"top\":" << r.top()
                   << ",\"right\":" << r.right() << ",\"bottom\":" << r.bottom() << "}"
                   << ",\"score\":" << num(dets[fi].detection_confidence)
                   << ",\"landmarks\":[";
                for (unsigned long k = 0; k < shape.num_parts(); ++k)
                {
                    if (k) js << ",";
                    js << "[" << shape.part(k).x() << "," << shape.part(k).y() << "]";
                }
                js << "],\"landmarks_chip\":[";
                for (unsigned long k = 0; k < shape.num_parts(); ++k)
                {
                    dpoint p = to_chip(dpoint(shape.part(k)));
                    if (k) js << ",";
                    js << "[" << num(p.x()) << "," << num(p.y()) << "]";
                }
                const matrix<double,2,2> m = to_chip.get_m();
                const dlib::vector<double,2> b = to_chip.get_b();
                js << "],\"chip_details\":{\"rect\":{\"left\":" << num(cd.rect.left())
                   << ",\"top\":" << num(cd.rect.top()) << ",\"right\":" << num(cd.rect.right())
                   << ",\"bottom\":" << num(cd.rect.bottom()) << "},\"angle\":" << num(cd.angle)
                   << ",\"rows\":" << cd.rows << ",\"cols\":" << cd.cols << "}"
                   << ",\"image_to_chip\":[[" << num(m(0,0)) << "," << num(m(0,1)) << "," << num(b.x())
                   << "],[" << num(m(1,0)) << "," << num(m(1,1)) << "," << num(b.y()) << "]]";
                if (!chip_path.empty())
                    js << ",\"chip\":" << json_str(chip_path);
                js << ",\"descriptor_norm\":" << num(length(desc));
                js << ",\"descriptor\":[";
                for (long k = 0; k < desc.size(); ++k)
                {
                    if (k) js << ",";
                    js << num(desc(k));
                }
                js << "]}";
            }
            js << "]}";
            std::cout << js.str() << "\n" << std::flush;
        }
        catch (std::exception& e)
        {
            std::string msg = e.what();
            std::cout << "{\"path\":" << json_str(path) << ",\"error\":" << json_str(msg) << "}\n" << std::flush;
            status = 1;
        }
    }
    return status;
}
